import { daysBetween, testDay, testMonth } from '../calendar';
import { groupBy, key, shown, type Findings, type History, type Layout, type RaffleRow, type Snapshot } from './types';

/** How far the service's order_time may be outside the test's own window around the call (same machine clock). */
export const CLOCK_SLACK_MS = 1_000;

/**
 * When each raffle order was made, as the test saw it: after the first call that got it was sent,
 * before the first `0000` naming it arrived. Orders no timed call got have no window.
 */
export function orderWindows(h: History): Map<string, { from: number; to: number }> {
  const w = new Map<string, { from: number; to: number }>();
  for (const p of h.partakes ?? []) {
    if (p.sentAt === undefined || p.okAt === undefined) continue;
    for (const r of p.replies) {
      if (r.code !== '0000' || r.orderId === undefined) continue;
      const cur = w.get(r.orderId);
      w.set(r.orderId, { from: Math.min(cur?.from ?? Infinity, p.sentAt), to: Math.min(cur?.to ?? Infinity, p.okAt) });
    }
  }
  return w;
}

/** Accounts add up: totals = Σ its recharge orders; total surplus = total − live raffle orders; nothing below zero. */
export function checkAccounts(f: Findings, s: Snapshot): void {
  const sums = new Map<string, { t: number; d: number; m: number }>();
  for (const o of s.orders) {
    const x = sums.get(key(o.user_id, o.activity_id)) ?? { t: 0, d: 0, m: 0 };
    (x.t += o.total_count), (x.d += o.day_count), (x.m += o.month_count);
    sums.set(key(o.user_id, o.activity_id), x);
  }
  const raffles = groupBy(s.raffle, (r) => key(r.user_id, r.activity_id));
  const accounts = new Map(s.accounts.map((a) => [key(a.user_id, a.activity_id), a]));
  for (const k of sums.keys()) if (!accounts.has(k)) f.add('no-account', `orders credited to ${shown(k)} but no account row`, { lost: 1 });
  for (const [k, a] of accounts) {
    const x = sums.get(k) ?? { t: 0, d: 0, m: 0 };
    const live = (raffles.get(k) ?? []).filter((r) => r.order_state !== 'cancel').length;
    const who = `account ${shown(k)}`;
    if (a.total_count !== x.t) f.add('account-total', `${who}: total_count ${a.total_count} ≠ Σ orders ${x.t}`);
    if (a.day_count !== x.d) f.add('account-day', `${who}: day_count ${a.day_count} ≠ Σ orders ${x.d}`);
    if (a.month_count !== x.m) f.add('account-month', `${who}: month_count ${a.month_count} ≠ Σ orders ${x.m}`);
    if (a.total_count_surplus !== a.total_count - live) f.add('account-surplus', `${who}: total_count_surplus ${a.total_count_surplus} ≠ total ${a.total_count} − ${live} live raffle orders`);
    for (const c of ['total_count_surplus', 'day_count_surplus', 'month_count_surplus'] as const) if (a[c] < 0) f.add('negative', `${who}: ${c} ${a[c]} < 0`);
  }
}

type Period = 'day' | 'month';

/**
 * Day and month rows against the periods the test itself saw: each raffle order falls on the day(s)
 * of its window in ACTIVITY_TIME_ZONE, by the test's calendar; a row's count − surplus must be the
 * orders of that period (a cancelled one may or may not have been refunded; a window across
 * midnight may count on either side). The service's order_time must lie inside the window.
 */
export function checkPeriods(f: Findings, h: History, s: Snapshot, layout: Layout, now = Date.now()): void {
  const tz = layout.timeZone;
  const windows = orderWindows(h);
  const periodsOf = (r: RaffleRow, p: Period): string[] => {
    const w = windows.get(r.order_id);
    const days = w ? daysBetween(tz, w.from, w.to) : [testDay(tz, r.order_time)];
    return [...new Set(p === 'day' ? days : days.map((d) => d.slice(0, 7)))];
  };
  for (const r of s.raffle) {
    const w = windows.get(r.order_id);
    const t = r.order_time.getTime();
    if (w && (t < w.from - CLOCK_SLACK_MS || t > w.to + CLOCK_SLACK_MS))
      f.add('order-time', `raffle order ${r.order_id}: order_time ${r.order_time.toISOString()} is outside the test's window ${new Date(w.from).toISOString()} … ${new Date(w.to).toISOString()}`);
  }
  const raffles = groupBy(s.raffle, (r) => key(r.user_id, r.activity_id));
  const accounts = new Map(s.accounts.map((a) => [key(a.user_id, a.activity_id), a]));
  const rows = [
    ...s.days.map((d) => ({ p: 'day' as Period, user: d.user_id, act: d.activity_id, period: d.day, count: d.day_count, surplus: d.day_count_surplus })),
    ...s.months.map((m) => ({ p: 'month' as Period, user: m.user_id, act: m.activity_id, period: m.month, count: m.month_count, surplus: m.month_count_surplus })),
  ];
  const today = { day: testDay(tz, now), month: testMonth(tz, now) };
  const seen = new Set<string>();
  for (const row of rows) {
    const who = `${row.p} row ${row.user}/${row.act}/${row.period}`;
    seen.add(key(row.p, row.user, row.act, row.period));
    if (row.surplus < 0) f.add('negative', `${who}: surplus ${row.surplus} < 0`);
    let lo = 0;
    let hi = 0;
    for (const r of raffles.get(key(row.user, row.act)) ?? []) {
      const ps = periodsOf(r, row.p);
      if (!ps.includes(row.period)) continue;
      hi++;
      if (ps.length === 1 && r.order_state !== 'cancel') lo++;
    }
    const used = row.count - row.surplus;
    if (used < lo || used > hi) f.add(`${row.p}-row`, `${who}: count ${row.count} − surplus ${row.surplus} = ${used}, the test saw ${lo === hi ? lo : `${lo}…${hi}`} raffle orders that ${row.p}`);
    const a = accounts.get(key(row.user, row.act));
    const mirror = row.p === 'day' ? a?.day_count_surplus : a?.month_count_surplus;
    if (row.period === today[row.p] && a && mirror !== row.surplus) f.add(`${row.p}-mirror`, `${who}: surplus ${row.surplus} ≠ account ${row.p}_count_surplus ${mirror}`);
  }
  for (const r of s.raffle) {
    for (const p of ['day', 'month'] as const) {
      const ps = periodsOf(r, p);
      if (ps.length === 1 && !seen.has(key(p, r.user_id, r.activity_id, ps[0])))
        f.add(`${p}-row`, `raffle order ${r.order_id} of ${r.user_id} was made on ${ps[0]} (the test's ${p}), and there is no ${p} row for it`);
    }
  }
}
