/** Quota periods are counted in the activity time zone: days `YYYY-MM-DD`, months `YYYY-MM`. */
export type Period = Readonly<{ day: string; month: string }>;

const formats = new Map<string, Intl.DateTimeFormat>();

const last = new Map<string, { second: number; period: Period }>();

/**
 * The period of `now` in `timeZone`. Every zone's offset, even a historical local mean time, is a
 * whole number of seconds, so a day never changes inside a second: the last answer per zone is
 * reused within its second (`formatToParts` was the costliest call of a partake's own code).
 */
export function periodOf(now: Date, timeZone: string): Period {
  const second = Math.floor(now.getTime() / 1_000);
  const hit = last.get(timeZone);
  if (hit?.second === second) return hit.period;
  let f = formats.get(timeZone);
  if (!f) formats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  const p = f.formatToParts(now);
  const part = (t: string) => p.find((x) => x.type === t)!.value;
  const day = `${part('year')}-${part('month')}-${part('day')}`;
  const period = { day, month: day.slice(0, 7) };
  last.set(timeZone, { second, period });
  return period;
}
