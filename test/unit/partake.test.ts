import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Activity } from '../../domain/catalog';
import { checkActivity, deductOne, quotaAsOf, type AccountQuota } from '../../domain/partake';
import { refuseChange } from '../../domain/raffle-order';

const anActivity = (o: Partial<Activity> = {}): Activity => ({
  activityId: 100301,
  name: 'Spring raffle',
  desc: '',
  strategyId: 100006,
  beginTime: new Date('2026-01-01T00:00:00Z'),
  endTime: new Date('2027-01-01T00:00:00Z'),
  state: 'open',
  ...o,
});
const anAccount = (o: Partial<AccountQuota> = {}): AccountQuota => ({ totalCount: 10, totalSurplus: 10, dayCount: 3, monthCount: 6, ...o });
const NOW = new Date('2026-05-10T08:00:00Z');
const UTC = 'UTC';
const SHANGHAI = 'Asia/Shanghai';

test('activity: unknown → 010, not open → 003, outside [begin, end) → 004, inside → ok', () => {
  assert.is(checkActivity(undefined, NOW).ok, false);
  assert.equal(pick(checkActivity(undefined, NOW)), 'ERR_BIZ_010');
  assert.equal(pick(checkActivity(anActivity({ state: 'close' }), NOW)), 'ERR_BIZ_003');
  assert.equal(pick(checkActivity(anActivity({ state: 'create' }), NOW)), 'ERR_BIZ_003');
  assert.equal(pick(checkActivity(anActivity({ beginTime: new Date('2026-05-10T08:00:01Z') }), NOW)), 'ERR_BIZ_004');
  assert.equal(pick(checkActivity(anActivity({ endTime: new Date('2026-05-10T07:59:59Z') }), NOW)), 'ERR_BIZ_004');
  assert.is(checkActivity(anActivity({ beginTime: NOW }), NOW).ok, true);
  assert.is(checkActivity(anActivity(), NOW).ok, true);
  // The end instant itself is outside (half-open window, the same rule as recharge); a millisecond before is inside.
  assert.equal(pick(checkActivity(anActivity({ endTime: NOW }), NOW)), 'ERR_BIZ_004');
  assert.is(checkActivity(anActivity({ endTime: new Date(NOW.getTime() + 1) }), NOW).ok, true);
  assert.equal(pick(checkActivity(anActivity({ beginTime: new Date(NOW.getTime() + 1) }), NOW)), 'ERR_BIZ_004');
});

test('given no account, when deducting, then 006', () => {
  assert.equal(pick(deductOne({}, NOW, UTC)), 'ERR_BIZ_006');
});

test('given a fresh account and no rows, when deducting, then both rows are created one below the allowance', () => {
  const d = deductOne({ account: anAccount() }, NOW, UTC);
  assert.equal(d, {
    ok: true,
    period: { day: '2026-05-10', month: '2026-05' },
    totalSurplus: 9,
    day: { kind: 'create', count: 3, surplus: 2 },
    month: { kind: 'create', count: 6, surplus: 5 },
  });
});

test("given today's and this month's rows, when deducting, then both are decremented", () => {
  const d = deductOne({ account: anAccount({ totalSurplus: 7 }), day: { day: '2026-05-10', count: 3, surplus: 1 }, month: { month: '2026-05', count: 6, surplus: 4 } }, NOW, UTC);
  assert.equal(d, { ok: true, period: { day: '2026-05-10', month: '2026-05' }, totalSurplus: 6, day: { kind: 'decrement', surplus: 0 }, month: { kind: 'decrement', surplus: 3 } });
});

test('exhausted dimensions: total → 006, month → 007, day → 008, checked in that order', () => {
  const day0 = { day: '2026-05-10', count: 3, surplus: 0 };
  const month0 = { month: '2026-05', count: 6, surplus: 0 };
  assert.equal(pick(deductOne({ account: anAccount({ totalSurplus: 0 }), day: day0, month: month0 }, NOW, UTC)), 'ERR_BIZ_006');
  assert.equal(pick(deductOne({ account: anAccount(), day: day0, month: month0 }, NOW, UTC)), 'ERR_BIZ_007');
  assert.equal(pick(deductOne({ account: anAccount(), day: day0 }, NOW, UTC)), 'ERR_BIZ_008');
});

test('a missing row counts as the account allowance: an allowance of 0 refuses', () => {
  assert.equal(pick(deductOne({ account: anAccount({ monthCount: 0 }) }, NOW, UTC)), 'ERR_BIZ_007');
  assert.equal(pick(deductOne({ account: anAccount({ dayCount: 0 }) }, NOW, UTC)), 'ERR_BIZ_008');
});

test("midnight in UTC+8: yesterday's exhausted day row does not count for the new day", () => {
  const rows = { account: anAccount(), day: { day: '2026-05-09', count: 3, surplus: 0 }, month: { month: '2026-05', count: 6, surplus: 3 } };
  // Given 23:59:59 on 9 May in Shanghai, when deducting, then the day is exhausted
  assert.equal(pick(deductOne(rows, new Date('2026-05-09T15:59:59Z'), SHANGHAI)), 'ERR_BIZ_008');
  // Given 00:00:00 on 10 May in Shanghai (still 9 May in UTC), then a new day row is created
  const d = deductOne(rows, new Date('2026-05-09T16:00:00Z'), SHANGHAI);
  assert.ok(d.ok && d.period.day === '2026-05-10' && d.day.kind === 'create' && d.day.surplus === 2 && d.month.kind === 'decrement');
  // In UTC the same instant is still 9 May
  assert.equal(pick(deductOne(rows, new Date('2026-05-09T16:00:00Z'), UTC)), 'ERR_BIZ_008');
});

test('month end in UTC+8: an exhausted May does not carry into June', () => {
  const rows = { account: anAccount(), day: { day: '2026-05-31', count: 3, surplus: 3 }, month: { month: '2026-05', count: 6, surplus: 0 } };
  assert.equal(pick(deductOne(rows, new Date('2026-05-31T15:59:59Z'), SHANGHAI)), 'ERR_BIZ_007');
  const d = deductOne(rows, new Date('2026-05-31T16:00:00Z'), SHANGHAI);
  assert.ok(d.ok);
  assert.equal(d.ok && d.period, { day: '2026-06-01', month: '2026-06' });
  assert.equal(d.ok && d.month, { kind: 'create', count: 6, surplus: 5 });
  assert.equal(d.ok && d.day, { kind: 'create', count: 3, surplus: 2 });
});

test('leap year: Feb 28 → 29 → Mar 1 each start a new day; March starts a new month', () => {
  const account = anAccount({ dayCount: 1 });
  const feb28 = { day: '2028-02-28', count: 1, surplus: 0 };
  const feb = { month: '2028-02', count: 6, surplus: 4 };
  assert.equal(pick(deductOne({ account, day: feb28, month: feb }, new Date('2028-02-28T23:59:59Z'), UTC)), 'ERR_BIZ_008');
  const d29 = deductOne({ account, day: feb28, month: feb }, new Date('2028-02-29T00:00:00Z'), UTC);
  assert.ok(d29.ok && d29.period.day === '2028-02-29' && d29.day.kind === 'create' && d29.month.kind === 'decrement');
  const feb29 = { day: '2028-02-29', count: 1, surplus: 0 };
  assert.equal(pick(deductOne({ account, day: feb29, month: feb }, new Date('2028-02-29T23:59:59Z'), UTC)), 'ERR_BIZ_008');
  const mar1 = deductOne({ account, day: feb29, month: { ...feb, surplus: 0 } }, new Date('2028-03-01T00:00:00Z'), UTC);
  assert.ok(mar1.ok);
  assert.equal(mar1.ok && mar1.period, { day: '2028-03-01', month: '2028-03' });
  assert.equal(mar1.ok && mar1.month.kind, 'create');
});

test('query: zeros without account; full allowance without rows; row values where they exist', () => {
  assert.equal(quotaAsOf({}, NOW, UTC), { totalCount: 0, totalCountSurplus: 0, dayCount: 0, dayCountSurplus: 0, monthCount: 0, monthCountSurplus: 0 });
  assert.equal(quotaAsOf({ account: anAccount() }, NOW, UTC), { totalCount: 10, totalCountSurplus: 10, dayCount: 3, dayCountSurplus: 3, monthCount: 6, monthCountSurplus: 6 });
  const rows = { account: anAccount({ totalSurplus: 9 }), day: { day: '2026-05-10', count: 3, surplus: 2 }, month: { month: '2026-05', count: 6, surplus: 5 } };
  assert.equal(quotaAsOf(rows, NOW, UTC), { totalCount: 10, totalCountSurplus: 9, dayCount: 3, dayCountSurplus: 2, monthCount: 6, monthCountSurplus: 5 });
  // The next day in UTC+8 starts full again
  assert.equal(quotaAsOf(rows, new Date('2026-05-10T16:00:00Z'), SHANGHAI).dayCountSurplus, 3);
});

test('use: create is usable, used/cancel → 009, unknown → 010', () => {
  assert.is(refuseChange('create'), undefined);
  assert.is(refuseChange('used')?.code, 'ERR_BIZ_009');
  assert.is(refuseChange('cancel')?.code, 'ERR_BIZ_009');
  assert.is(refuseChange(undefined)?.code, 'ERR_BIZ_010');
});

function pick(d: { ok: boolean; code?: string }): string | undefined {
  return d.ok ? undefined : d.code;
}

test.run();
