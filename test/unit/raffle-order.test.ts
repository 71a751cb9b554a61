import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Activity } from '../../domain/catalog';
import { decidePartake } from '../../domain/partake';
import { decideCancel, expiryCutoff, sameChangeAgain, type RaffleOrder } from '../../domain/raffle-order';

const activity: Activity = {
  activityId: 100301,
  name: 'Spring raffle',
  desc: '',
  strategyId: 100006,
  beginTime: new Date('2026-01-01T00:00:00Z'),
  endTime: new Date('2027-01-01T00:00:00Z'),
  state: 'open',
};
const account = { totalCount: 10, totalSurplus: 10, dayCount: 3, monthCount: 6 };
const NOW = new Date('2026-05-10T08:00:00Z');
const anOrder = (o: Partial<RaffleOrder> = {}): RaffleOrder => ({
  orderId: '123456789012',
  userId: 'u1',
  activityId: 100301,
  activityName: 'Spring raffle',
  strategyId: 100006,
  orderTime: new Date('2026-05-10T07:00:00Z'),
  orderState: 'create',
  ...o,
});

test('partake decision: a new order with its deduction and its partake.created event', () => {
  const d = decidePartake({ account }, activity, { userId: 'u1', activityId: 100301 }, '123456789012', NOW, 'UTC');
  assert.is(d.kind, 'create');
  if (d.kind !== 'create') return;
  assert.equal(d.order, { ...anOrder(), orderTime: NOW });
  assert.equal(d.deduction, {
    ok: true,
    period: { day: '2026-05-10', month: '2026-05' },
    totalSurplus: 9,
    day: { kind: 'create', count: 3, surplus: 2 },
    month: { kind: 'create', count: 6, surplus: 5 },
  });
  assert.equal(d.events, [
    {
      topic: 'partake.created',
      userId: 'u1',
      messageId: 'partake.created:123456789012',
      data: { orderId: '123456789012', userId: 'u1', activityId: 100301, strategyId: 100006, orderTime: NOW.toISOString() },
    },
  ]);
});

test('partake decision: the unused order is returned as it is; no account or no quota is a refusal', () => {
  const open = anOrder();
  assert.equal(decidePartake({ account: { ...account, totalSurplus: 0 }, open }, activity, { userId: 'u1', activityId: 100301 }, 'x', NOW, 'UTC'), { kind: 'existing', order: open });
  const none = decidePartake({}, activity, { userId: 'u1', activityId: 100301 }, 'x', NOW, 'UTC');
  assert.is(none.kind === 'refused' && none.refusal.code, 'ERR_BIZ_006');
  const spent = decidePartake({ account: { ...account, totalSurplus: 0 } }, activity, { userId: 'u1', activityId: 100301 }, 'x', NOW, 'UTC');
  assert.is(spent.kind === 'refused' && spent.refusal.code, 'ERR_BIZ_006');
});

test('partake decision: a request delivered again gets the order it created, used or not, before the unused one and the quota', () => {
  const mine = anOrder({ orderState: 'used' });
  const open = anOrder({ orderId: '222222222222' });
  const req = { userId: 'u1', activityId: 100301 };
  assert.equal(decidePartake({ account, mine, open }, activity, req, 'x', NOW, 'UTC'), { kind: 'existing', order: mine });
  assert.equal(decidePartake({ account: { ...account, totalSurplus: 0 }, mine }, activity, req, 'x', NOW, 'UTC'), { kind: 'existing', order: mine });
  assert.is(decidePartake({ account, open }, activity, req, 'x', NOW, 'UTC').kind, 'existing');
});

test('cancel: an order of today refunds total, day and month, with its event', () => {
  const d = decideCancel(anOrder(), NOW, 'UTC');
  assert.is(d.kind, 'cancel');
  if (d.kind !== 'cancel') return;
  assert.equal(d.refund, { total: 1, day: 1, month: 1 });
  assert.equal(d.period, { day: '2026-05-10', month: '2026-05' });
  assert.is(d.order.orderState, 'cancel');
  assert.equal(
    d.events.map((e) => [e.topic, e.userId, e.data]),
    [['raffle-order.cancelled', 'u1', { orderId: '123456789012', userId: 'u1', activityId: 100301, refund: { total: 1, day: 1, month: 1 } }]],
  );
});

test('cancel: an order of yesterday refunds no day; of last month, no day and no month', () => {
  const yesterday = decideCancel(anOrder({ orderTime: new Date('2026-05-09T23:59:59.999Z') }), NOW, 'UTC');
  assert.equal(yesterday.kind === 'cancel' && yesterday.refund, { total: 1, day: 0, month: 1 });
  const lastMonth = decideCancel(anOrder({ orderTime: new Date('2026-04-30T23:59:59Z') }), NOW, 'UTC');
  assert.equal(lastMonth.kind === 'cancel' && lastMonth.refund, { total: 1, day: 0, month: 0 });
});

test('cancel: days and months are those of the activity time zone', () => {
  // 23:30 UTC on 9 May is 07:30 on 10 May in Shanghai: the same day there as 08:00 UTC on 10 May (16:00).
  const order = anOrder({ orderTime: new Date('2026-05-09T23:30:00Z') });
  assert.equal(refundOf(order, 'Asia/Shanghai'), { total: 1, day: 1, month: 1 });
  assert.equal(refundOf(order, 'UTC'), { total: 1, day: 0, month: 1 });
  // 30 April 16:30 UTC is 1 May 00:30 in Shanghai: this month there, last month in UTC.
  const may1 = anOrder({ orderTime: new Date('2026-04-30T16:30:00Z') });
  assert.equal(refundOf(may1, 'Asia/Shanghai'), { total: 1, day: 0, month: 1 });
  assert.equal(refundOf(may1, 'UTC'), { total: 1, day: 0, month: 0 });
});

function refundOf(order: RaffleOrder, timeZone: string): unknown {
  const d = decideCancel(order, NOW, timeZone);
  return d.kind === 'cancel' ? d.refund : d.refusal.code;
}

test('cancel: used or cancelled → 009 and nothing to refund; unknown → 010', () => {
  for (const [order, code] of [
    [anOrder({ orderState: 'used' }), 'ERR_BIZ_009'],
    [anOrder({ orderState: 'cancel' }), 'ERR_BIZ_009'],
    [undefined, 'ERR_BIZ_010'],
  ] as const) {
    const d = decideCancel(order, NOW, 'UTC');
    assert.equal(d.kind === 'refused' && d.refusal.code, code);
  }
});

test('expiry cutoff: an order reaches its TTL at orderTime + ttl', () => {
  assert.equal(expiryCutoff(30, NOW), new Date('2026-05-10T07:59:30Z'));
});

test('the same use or cancel again: only its own message id, only the state it asked for', () => {
  assert.ok(sameChangeAgain('used', 'm-1', 'm-1', 'used'));
  assert.ok(sameChangeAgain('cancel', 'm-1', 'm-1', 'cancel'));
  assert.not.ok(sameChangeAgain('used', 'm-1', 'm-2', 'used'), 'another request');
  assert.not.ok(sameChangeAgain('cancel', 'm-1', 'm-1', 'used'), 'the id of a cancel does not answer a use');
  assert.not.ok(sameChangeAgain('used', null, undefined, 'used'), 'no id on either side: nothing recognised');
  assert.not.ok(sameChangeAgain('used', 'm-1', undefined, 'used'));
  assert.not.ok(sameChangeAgain('create', 'm-1', 'm-1', 'used'));
  assert.not.ok(sameChangeAgain(undefined, undefined, 'm-1', 'used'));
});

test.run();
