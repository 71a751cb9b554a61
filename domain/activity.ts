import type { Activity } from './catalog';

/** When an activity takes orders: one rule for partake and recharge (contract §5 ERR_BIZ_003 / 004). */

/** The activity's dates as a half-open window [begin, end): open from its begin instant, closed at its end instant. */
export function withinDates(a: Pick<Activity, 'beginTime' | 'endTime'>, now: Date): boolean {
  const t = now.getTime();
  return a.beginTime.getTime() <= t && t < a.endTime.getTime();
}

export type ActivityRefusal = Readonly<{ ok: false; code: 'ERR_BIZ_003' | 'ERR_BIZ_004'; info: string }>;

/** Why the activity takes no order at `now` (not open → 003, outside [begin, end) → 004); undefined when it does. */
export function activityRefusal(a: Activity, now: Date): ActivityRefusal | undefined {
  if (a.state !== 'open') return { ok: false, code: 'ERR_BIZ_003', info: `activity ${a.activityId} is ${a.state}, not open` };
  if (!withinDates(a, now)) {
    return { ok: false, code: 'ERR_BIZ_004', info: `activity ${a.activityId} runs from ${a.beginTime.toISOString()} until ${a.endTime.toISOString()} (end excluded)` };
  }
  return undefined;
}
