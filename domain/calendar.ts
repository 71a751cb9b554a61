/** Quota periods are counted in the activity time zone: days `YYYY-MM-DD`, months `YYYY-MM`. */
export type Period = Readonly<{ day: string; month: string }>;

const formats = new Map<string, Intl.DateTimeFormat>();

export function periodOf(now: Date, timeZone: string): Period {
  let f = formats.get(timeZone);
  if (!f) formats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  const p = f.formatToParts(now);
  const part = (t: string) => p.find((x) => x.type === t)!.value;
  const day = `${part('year')}-${part('month')}-${part('day')}`;
  return { day, month: day.slice(0, 7) };
}
