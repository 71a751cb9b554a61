import { activityRefusal } from './activity';
import { periodOf, type Period } from './calendar';
import type { Activity } from './catalog';
import type { DomainEvent } from './events';
import { partakeCreatedEvent, type RaffleOrder } from './raffle-order';

/** Spending one chance (contract §6 Partake): pure decisions over rows the caller has locked. */

export type AccountQuota = Readonly<{ totalCount: number; totalSurplus: number; dayCount: number; monthCount: number }>;
/** A day row (`day` = `YYYY-MM-DD` in the activity time zone). */
export type DayQuota = Readonly<{ day: string; count: number; surplus: number }>;
/** A month row (`month` = `YYYY-MM`). */
export type MonthQuota = Readonly<{ month: string; count: number; surplus: number }>;
export type QuotaRows = Readonly<{ account?: AccountQuota; day?: DayQuota; month?: MonthQuota }>;
/**
 * Under the account lock: the quota rows, the user's unused order of the activity (`open`), and the
 * order this very request created on an earlier delivery (`mine`, found by its message id).
 */
export type LockedQuota = QuotaRows & Readonly<{ open?: RaffleOrder; mine?: RaffleOrder }>;

export type RefusalCode = 'ERR_BIZ_003' | 'ERR_BIZ_004' | 'ERR_BIZ_006' | 'ERR_BIZ_007' | 'ERR_BIZ_008' | 'ERR_BIZ_009' | 'ERR_BIZ_010';
export type Refusal = Readonly<{ ok: false; code: RefusalCode; info: string }>;

export const refuse = (code: RefusalCode, info: string): Refusal => ({ ok: false, code, info });

/** Unknown → 010, not open → 003, `now` outside [begin, end) → 004. */
export function checkActivity(activity: Activity | undefined, now: Date): Readonly<{ ok: true; activity: Activity }> | Refusal {
  if (!activity) return refuse('ERR_BIZ_010', 'unknown activity');
  return activityRefusal(activity, now) ?? { ok: true, activity };
}

/** What to write for today's day row / this month's month row; `surplus` is the value after the deduction. */
export type PeriodWrite = Readonly<{ kind: 'create'; count: number; surplus: number } | { kind: 'decrement'; surplus: number }>;

/** The deduction of one chance: the period it is counted in, and the new surpluses. */
export type Deduction = Readonly<{ ok: true; period: Period; totalSurplus: number; day: PeriodWrite; month: PeriodWrite }>;

/**
 * Total, then this month, then today. A missing row, or a row of another period, counts as the
 * account's `day_count` / `month_count`: a new day or month starts full.
 */
export function deductOne(rows: QuotaRows, now: Date, timeZone: string): Deduction | Refusal {
  const { account } = rows;
  if (!account) return refuse('ERR_BIZ_006', 'no account for this activity');
  const period = periodOf(now, timeZone);
  const month = current(rows.month?.month === period.month ? rows.month : undefined, account.monthCount);
  const day = current(rows.day?.day === period.day ? rows.day : undefined, account.dayCount);
  if (account.totalSurplus < 1) return refuse('ERR_BIZ_006', 'total quota exhausted');
  if (month.surplus < 1) return refuse('ERR_BIZ_007', 'month quota exhausted');
  if (day.surplus < 1) return refuse('ERR_BIZ_008', 'day quota exhausted');
  return { ok: true, period, totalSurplus: account.totalSurplus - 1, day: deduct(day), month: deduct(month) };
}

export type PartakeRequest = Readonly<{ userId: string; activityId: number }>;

/** The whole outcome of a partake: a refusal, the unused order returned as it is, or a new order with its writes and events. */
export type PartakeDecision =
  | Readonly<{ kind: 'refused'; refusal: Refusal }>
  | Readonly<{ kind: 'existing'; order: RaffleOrder }>
  | Readonly<{ kind: 'create'; order: RaffleOrder; deduction: Deduction; events: readonly [DomainEvent] }>;

/** While the user has an unused order for the activity it is returned and nothing is deducted. */
export function decidePartake(rows: LockedQuota, activity: Activity, req: PartakeRequest, orderId: string, now: Date, timeZone: string): PartakeDecision {
  if (!rows.account) return { kind: 'refused', refusal: refuse('ERR_BIZ_006', 'no account for this activity') };
  // A request delivered again (a caller's retry with the same message id) gets its own order back,
  // even if that order was used or cancelled since: one request, one chance.
  if (rows.mine) return { kind: 'existing', order: rows.mine };
  if (rows.open) return { kind: 'existing', order: rows.open };
  const deduction = deductOne(rows, now, timeZone);
  if (!deduction.ok) return { kind: 'refused', refusal: deduction };
  const order: RaffleOrder = {
    orderId,
    userId: req.userId,
    activityId: req.activityId,
    activityName: activity.name,
    strategyId: activity.strategyId,
    orderTime: now,
    orderState: 'create',
  };
  return { kind: 'create', order, deduction, events: [partakeCreatedEvent(order)] };
}

type Current = Readonly<{ exists: boolean; count: number; surplus: number }>;
const current = (row: { count: number; surplus: number } | undefined, fallback: number): Current =>
  row ? { exists: true, count: row.count, surplus: row.surplus } : { exists: false, count: fallback, surplus: fallback };
const deduct = (c: Current): PeriodWrite => (c.exists ? { kind: 'decrement', surplus: c.surplus - 1 } : { kind: 'create', count: c.count, surplus: c.surplus - 1 });

/** `activity.account.query` data. */
export type QuotaView = Readonly<{
  totalCount: number;
  totalCountSurplus: number;
  dayCount: number;
  dayCountSurplus: number;
  monthCount: number;
  monthCountSurplus: number;
}>;

/** The account as of `now`: today's / this month's rows where they exist, else full; zeros without an account. */
export function quotaAsOf(rows: QuotaRows, now: Date, timeZone: string): QuotaView {
  const { account } = rows;
  if (!account) return { totalCount: 0, totalCountSurplus: 0, dayCount: 0, dayCountSurplus: 0, monthCount: 0, monthCountSurplus: 0 };
  const period = periodOf(now, timeZone);
  const day = current(rows.day?.day === period.day ? rows.day : undefined, account.dayCount);
  const month = current(rows.month?.month === period.month ? rows.month : undefined, account.monthCount);
  return {
    totalCount: account.totalCount,
    totalCountSurplus: account.totalSurplus,
    dayCount: day.count,
    dayCountSurplus: day.surplus,
    monthCount: month.count,
    monthCountSurplus: month.surplus,
  };
}
