/**
 * The test's own calendar: the day and month of an instant in an IANA zone, worked out from the
 * zone's UTC offset at that instant (`longOffset`, e.g. "GMT+05:45") and plain UTC arithmetic.
 * Deliberately not the service's code (domain/calendar.ts reads the date parts): the books check
 * the service's day and month rows against this one.
 */
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** Minutes east of UTC in `timeZone` at `at`. */
export function offsetMinutes(timeZone: string, at: Date): number {
  let f = offsetFormats.get(timeZone);
  if (!f) offsetFormats.set(timeZone, (f = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' })));
  const name = f.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /^GMT(?:([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?)?$/.exec(name);
  if (!m) throw new Error(`cannot read the UTC offset of ${timeZone}: ${name}`);
  if (!m[1]) return 0;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0) + Number(m[4] ?? 0) / 60;
  return m[1] === '-' ? -minutes : minutes;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `YYYY-MM-DD` of `at` in `timeZone`. */
export function testDay(timeZone: string, at: Date | number): string {
  const t = typeof at === 'number' ? at : at.getTime();
  const local = new Date(t + offsetMinutes(timeZone, new Date(t)) * 60_000);
  return `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
}

/** `YYYY-MM` of `at` in `timeZone`. */
export const testMonth = (timeZone: string, at: Date | number): string => testDay(timeZone, at).slice(0, 7);

/**
 * The days a moment seen only as "between `from` and `to`" may have fallen on: one day, or two
 * (rarely more) when midnight passed in between. Each day boundary is found by stepping an hour.
 */
export function daysBetween(timeZone: string, from: number, to: number): string[] {
  const days = new Set<string>([testDay(timeZone, from)]);
  for (let t = from; t < to; t += 3_600_000) days.add(testDay(timeZone, t));
  days.add(testDay(timeZone, to));
  return [...days];
}
