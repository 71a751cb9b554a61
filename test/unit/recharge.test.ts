import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Activity } from '../../domain/catalog';
import { checkRecharge, completedPayload, decideRecharge, rebateBizId, rechargeOrder, rejectedPayload, tookLastUnit, SOLD_OUT, type RechargeSku } from '../../domain/recharge';
import { parseBehavior, parseRecharge } from '../../workers/recharge/message';
import { inKeyOrder } from '../../workers/recharge/store';
import { aDelivery, permanentReason } from '../support/deliveries';

const now = new Date('2026-06-15T12:00:00Z');
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
const aSku = (o: Partial<RechargeSku> = {}, a: Partial<Activity> = {}): RechargeSku => ({
  sku: 9011,
  stockCount: 100,
  activity: anActivity(a),
  counts: { activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 },
  ...o,
});
const aRecharge = { userId: 'xiaofuge', sku: 9011, outBusinessNo: 'out-1', payType: 'free' as const, payAmount: '0' };

test('open activity within its dates: accepted', () => {
  const r = checkRecharge(aSku(), now);
  assert.ok(r.ok);
});

test('unknown sku: ERR_BIZ_010', () => {
  assert.equal(checkRecharge(undefined, now), { ok: false, code: 'ERR_BIZ_010', info: 'unknown sku' });
});

test('activity not open: ERR_BIZ_003 whatever the dates', () => {
  for (const state of ['create', 'close'] as const) {
    const r = checkRecharge(aSku({}, { state }), now);
    assert.is(r.ok ? 'ok' : r.code, 'ERR_BIZ_003');
  }
});

test('before begin or at/after end: ERR_BIZ_004', () => {
  const early = checkRecharge(aSku({}, { beginTime: new Date('2026-06-15T12:00:01Z') }), now);
  const atEnd = checkRecharge(aSku({}, { endTime: now }), now);
  const atBegin = checkRecharge(aSku({}, { beginTime: now }), now);
  assert.is(early.ok ? 'ok' : early.code, 'ERR_BIZ_004');
  assert.is(atEnd.ok ? 'ok' : atEnd.code, 'ERR_BIZ_004');
  assert.ok(atBegin.ok);
});

test('order carries the sku counts and the request; payloads follow contract §5', () => {
  const o = rechargeOrder({ ...aRecharge, payType: 'cash', payAmount: '12.50' }, aSku(), '123456789012', now);
  assert.equal(o, {
    orderId: '123456789012',
    userId: 'xiaofuge',
    sku: 9011,
    activityId: 100301,
    activityName: 'Spring raffle',
    strategyId: 100006,
    orderTime: now,
    totalCount: 10,
    dayCount: 3,
    monthCount: 6,
    payType: 'cash',
    payAmount: '12.50',
    outBusinessNo: 'out-1',
  });
  assert.equal(completedPayload(o), { orderId: '123456789012', userId: 'xiaofuge', sku: 9011, activityId: 100301, totalCount: 10, dayCount: 3, monthCount: 6, outBusinessNo: 'out-1' });
  assert.equal(rejectedPayload(aRecharge, SOLD_OUT), { userId: 'xiaofuge', sku: 9011, outBusinessNo: 'out-1', code: 'ERR_BIZ_005', info: 'sku stock exhausted' });
});

test('only the take that leaves zero is the last unit', () => {
  assert.ok(tookLastUnit(0));
  assert.not.ok(tookLastUnit(1));
});

test('rebate biz id joins user, behavior, sku and outBusinessNo', () => {
  assert.is(rebateBizId('u1', 'sign', 9011, '2026-06-15'), 'u1_sign_9011_2026-06-15');
});

test('parse: bare payload and envelope, defaults for pay fields', () => {
  assert.equal(parseRecharge(aDelivery({ userId: 'u1', sku: 9011, outBusinessNo: 'o1' })), { userId: 'u1', sku: 9011, outBusinessNo: 'o1', payType: 'free', payAmount: '0' });
  assert.equal(parseRecharge(aDelivery({ id: 'm1', timestamp: 1, data: { userId: 'u1', sku: 9011, outBusinessNo: 'o1', payType: 'cash', payAmount: '12.50' } })), {
    userId: 'u1',
    sku: 9011,
    outBusinessNo: 'o1',
    payType: 'cash',
    payAmount: '12.50',
  });
});

test('parse: every bad field is refused with its name', () => {
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: '9011', outBusinessNo: 'o' }))),
    'sku',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: -1, outBusinessNo: 'o' }))),
    'sku',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: 1.5, outBusinessNo: 'o' }))),
    'sku',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'x'.repeat(129), sku: 1, outBusinessNo: 'o' }))),
    'userId',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: '', sku: 1, outBusinessNo: 'o' }))),
    'userId',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: 1 }))),
    'outBusinessNo',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1\u0007', sku: 1, outBusinessNo: 'o' }))),
    'userId',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: 1, outBusinessNo: 'o', payType: 'gold' }))),
    'payType',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: 1, outBusinessNo: 'o', payAmount: '-1' }))),
    'payAmount',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u1', sku: 1, outBusinessNo: 'o', payAmount: 12.5 }))),
    'payAmount',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery(null, 'not json'))),
    'JSON',
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery(null, JSON.stringify({ userId: 'u', sku: 1, outBusinessNo: 'x'.repeat(1 << 20) })))),
    'limit',
  );
});

test('parse: ids with quotes, SQL text, CJK and emoji are taken verbatim', () => {
  const userId = "u1'; DROP TABLE raffle_activity_account; --";
  assert.is(parseRecharge(aDelivery({ userId, sku: 1, outBusinessNo: '订单-😀' })).userId, userId);
  assert.is(parseRecharge(aDelivery({ userId, sku: 1, outBusinessNo: '订单-😀' })).outBusinessNo, '订单-😀');
});

test('parse behavior: behavior is an id of 1-128 characters', () => {
  assert.equal(parseBehavior(aDelivery({ userId: 'u1', behavior: 'sign', outBusinessNo: '2026-06-15' })), { userId: 'u1', behavior: 'sign', outBusinessNo: '2026-06-15' });
  assert.equal(parseBehavior(aDelivery({ userId: 'u1', behavior: 'x'.repeat(128), outBusinessNo: 'd' })).behavior, 'x'.repeat(128));
  assert.is(
    permanentReason(() => parseBehavior(aDelivery({ userId: 'u1', behavior: 'x'.repeat(129), outBusinessNo: 'd' }))),
    'behavior is over 128 characters',
  );
});

test('decision: accepted and taken → credited with the order, its period and recharge.completed', () => {
  const d = decideRecharge(aRecharge, checkRecharge(aSku(), now), { kind: 'taken', remaining: 5 }, '123456789012', now, 'UTC');
  assert.is(d.kind, 'credited');
  if (d.kind !== 'credited') return;
  assert.equal(d.order, rechargeOrder(aRecharge, aSku(), '123456789012', now));
  assert.equal(d.period, { day: '2026-06-15', month: '2026-06' });
  assert.equal(
    d.events.map((e) => [e.topic, e.userId, e.data]),
    [['recharge.completed', 'xiaofuge', completedPayload(d.order)]],
  );
});

test('decision: the take that leaves zero adds sku.stock_zero; unlimited never does', () => {
  const last = decideRecharge(aRecharge, checkRecharge(aSku(), now), { kind: 'taken', remaining: 0 }, '1', now, 'UTC');
  assert.equal(
    last.events.map((e) => [e.topic, e.userId]),
    [
      ['recharge.completed', 'xiaofuge'],
      ['sku.stock_zero', 'xiaofuge'],
    ],
  );
  assert.equal(last.events[1]!.data, { sku: 9011 });
  const free = decideRecharge(aRecharge, checkRecharge(aSku({ stockCount: -1 }), now), { kind: 'unlimited' }, '1', now, 'UTC');
  assert.equal(
    free.events.map((e) => e.topic),
    ['recharge.completed'],
  );
});

test('decision: a refused or sold-out request is a rejection kept with its event, under the id given', () => {
  const closed = decideRecharge(aRecharge, checkRecharge(aSku({}, { state: 'close' }), now), undefined, '42', now, 'UTC');
  const soldOut = decideRecharge(aRecharge, checkRecharge(aSku(), now), { kind: 'sold-out' }, '43', now, 'UTC');
  for (const [d, code, id] of [
    [closed, 'ERR_BIZ_003', '42'],
    [soldOut, 'ERR_BIZ_005', '43'],
  ] as const) {
    assert.is(d.kind, 'rejected');
    if (d.kind !== 'rejected') continue;
    assert.equal({ ...d.rejection, info: 'x' }, { userId: 'xiaofuge', sku: 9011, outBusinessNo: 'out-1', code, info: 'x', messageId: `recharge.rejected:${id}`, time: now });
    assert.equal(
      d.events.map((e) => [e.topic, e.messageId, e.data]),
      [['recharge.rejected', `recharge.rejected:${id}`, rejectedPayload(aRecharge, { ok: false, code, info: d.rejection.info })]],
    );
  }
  assert.throws(() => decideRecharge(aRecharge, checkRecharge(aSku(), now), undefined, '1', now, 'UTC'), 'stock result');
});

test('inKeyOrder: advisory lock keys once each, in ascending numeric order (negative keys first, not text order)', () => {
  assert.equal(inKeyOrder(['10', '-3', '9', '10', '-20', '9223372036854775807', '-9223372036854775808']), ['-9223372036854775808', '-20', '-3', '9', '10', '9223372036854775807']);
  assert.equal(inKeyOrder([]), []);
});

test.run();
