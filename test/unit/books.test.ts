import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { judge } from '../support/books/judge';
import type { History, Snapshot } from '../support/books/types';
import { honest, LAYOUT, NOW, T } from './books-fixture';

/** Doctors an honest run and asserts the checker fails it by the named rule. */
function fails(rule: string, doctor: (h: any, s: Snapshot) => History | void, layout = LAYOUT) {
  const { h, s } = honest();
  const books = judge((doctor(h, s) as History) ?? h, s, layout, NOW);
  assert.ok(
    books.violations.some((v) => v.startsWith(`[${rule}]`)),
    `expected a [${rule}] finding, got: ${JSON.stringify(books.violations)}`,
  );
}

test('an honest run passes', () => {
  const { h, s } = honest();
  const books = judge(h, s, LAYOUT, NOW);
  assert.equal(books.violations, []);
  assert.equal({ lost: books.lost, doubled: books.doubled, inputs: books.inputs, effects: books.effects }, { lost: 0, doubled: 0, inputs: 7, effects: 7 });
});

test('ERR_BIZ_005 for an unlimited SKU is false', () =>
  fails('false-sold-out', (h, s) => {
    h.recharges[3].sku = 9011;
    s.rejections[0]!.sku = '9011';
  }));

test('ERR_BIZ_005 before the committed orders had reached the stock is false', () =>
  fails('false-sold-out', (_h, s) => {
    s.rejections[0]!.create_time = new Date(T - 120_000);
  }));

test('ERR_BIZ_005 while the SKU never sold out is false', () =>
  fails('false-sold-out', (h, s) => {
    h.catalog = { ...h.catalog, skus: [h.catalog.skus[0], { ...h.catalog.skus[1], stockCount: 3 }] };
    s.skus[1] = { sku: 9013, stock_count: 3, stock_count_surplus: 1 };
    s.redisStock.set(9013, 1);
  }));

test('a limited SKU that sold fewer than min(stock, distinct requests) is undersold', () =>
  fails('undersold', (h, s) => {
    h.catalog = { ...h.catalog, skus: [h.catalog.skus[0], { ...h.catalog.skus[1], stockCount: 3 }] };
    s.skus[1] = { sku: 9013, stock_count: 3, stock_count_surplus: 1 };
    s.redisStock.set(9013, 1);
  }));

test('ERR_BIZ_010 for a SKU the catalog knows is false', () =>
  fails('false-rejection', (_h, s) => {
    s.rejections[0]!.code = 'ERR_BIZ_010';
  }));

test('ERR_BIZ_003 for an open activity is false', () =>
  fails('false-rejection', (_h, s) => {
    s.rejections[0]!.code = 'ERR_BIZ_003';
  }));

test('a 0000 reply whose order is not in the database is lost', () =>
  fails('partake-lost', (_h, s) => {
    s.raffle = s.raffle.filter((r) => r.order_id !== 'p2');
  }));

test('a scenario whose partakes all failed fails', () =>
  fails('partakes-all-failed', (h) => {
    for (const p of h.partakes) p.replies = [{ code: '0001' }];
  }));

test('a user that stopped after an error: fewer successes than the load planned', () =>
  fails('partakes-short', (h) => {
    h.expectPartakes = 3;
  }));

test('ERR_BIZ_006 while the account still has chances is false', () =>
  fails('false-refusal', (h) => {
    h.partakes.push({ userId: 'u3', activityId: 100301, replies: [{ code: 'ERR_BIZ_006' }], sentAt: T, okAt: undefined });
  }));

test('0001 on a partake is never a true refusal', () =>
  fails('false-refusal', (h) => {
    h.partakes.push({ userId: 'u3', activityId: 100301, replies: [{ code: '0001' }], sentAt: T });
  }));

test('a use answered 0000 whose order is still open in the shard', () =>
  fails('order-state', (_h, s) => {
    s.raffle[0]!.order_state = 'create';
  }));

test('an order used although the test never sent a use', () =>
  fails('order-state', (_h, s) => {
    s.raffle[1]!.order_state = 'used';
  }));

test('an order cancelled without a raffle-order.cancelled event', () =>
  fails('order-state', (h, s) => {
    h.cancelsAllowed = true;
    s.raffle[1]!.order_state = 'cancel';
  }));

/** u2's open order p2: cancelled (event seen) while the test's use of it was refused. */
function cancelP2(h: any, s: Snapshot, cancelReply = '0000') {
  h.cancelsAllowed = true;
  s.raffle[1]!.order_state = 'cancel';
  s.accounts[1]!.total_count_surplus = 1;
  s.days[1]!.day_count_surplus = 1;
  s.months[1]!.month_count_surplus = 1;
  s.accounts[1]!.day_count_surplus = 1;
  s.accounts[1]!.month_count_surplus = 1;
  s.tasks.push({ shard: s.tasks[0]!.shard, id: '99', topic: 'raffle-order.cancelled', message_id: 'c:p2', state: 'completed', message: { id: 'c:p2', data: { orderId: 'p2' } }, user_id: 'u2' });
  h.events.push({ key: 'raffle-order.cancelled', messageId: 'c:p2', data: { orderId: 'p2', userId: 'u2' } });
  h.cancels = [{ userId: 'u2', orderId: 'p2', replies: [{ code: cancelReply }] }];
  h.uses.push({ userId: 'u2', orderId: 'p2', replies: [{ code: 'ERR_BIZ_009' }], attempts: 1 });
}

test('a cancel that beat a use, refunded: passes', () => {
  const { h, s } = honest();
  cancelP2(h, s);
  assert.equal(judge(h, s, LAYOUT, NOW).violations, []);
});

test('a use and a cancel of one order both answered 0000', () =>
  fails('cancel-and-use', (h, s) => {
    cancelP2(h, s);
    h.uses[1].replies = [{ code: '0000' }];
  }));

test('a cancel answered 0000 while the order ends used', () =>
  fails('order-state', (h, s) => {
    cancelP2(h, s);
    s.raffle[1]!.order_state = 'used';
  }));

test('a cancel answered with a code it may not give', () => fails('cancel-bad-reply', (h, s) => cancelP2(h, s, 'ERR_BIZ_010')));

test('a use that flipped its order twice', () =>
  fails('use-double', (h) => {
    h.uses[0].replies = [{ code: '0000' }, { code: '0000' }];
    h.uses[0].attempts = 2;
  }));

test('ERR_BIZ_009 on the only attempt of the only use is false', () =>
  fails('use-false-refusal', (h) => {
    h.uses[0].replies = [{ code: 'ERR_BIZ_009' }];
  }));

test('a use answered with something other than 0000 / ERR_BIZ_009', () =>
  fails('use-bad-reply', (h) => {
    h.uses[0].replies = [{ code: '0000' }, { code: 'ERR_BIZ_010' }];
  }));

test('a missing Redis counter is a finding, not a skip', () =>
  fails('redis-counter-missing', (_h, s) => {
    s.redisStock.delete(9013);
  }));

test("stock is judged by the test's ledger: a database that agrees with itself but not with the loaded stock", () =>
  fails('redis-stock', (_h, s) => {
    // stock_count − Σ orders = 1 = counter = surplus (what a rebuild would compute), but the test loaded stock 2 and saw 2 sold.
    s.skus[1] = { sku: 9013, stock_count: 3, stock_count_surplus: 1 };
    s.redisStock.set(9013, 1);
  }));

test('stock is judged by the events the test saw: an order whose recharge.completed never came', () =>
  fails('redis-stock', (h) => {
    h.events = h.events.filter((e: any) => !(e.key === 'recharge.completed' && e.data.orderId === 'o3'));
  }));

test('more orders than stock is oversold', () =>
  fails('oversold', (h) => {
    h.recharges.push({ userId: 'u5', outBusinessNo: 'r5', sku: 9013 });
    h.events.push({ key: 'recharge.completed', messageId: 'x5', data: { orderId: 'o5', sku: 9013 } });
  }));

test("a day row that matches the service's order_time but not the day the test saw", () =>
  fails(
    'day-row',
    (h, s) => {
      // 16:30 UTC on 31 May is 00:30 on 1 June in Shanghai; a service counting in UTC would write 31 May.
      const t = Date.parse('2026-05-31T16:30:00Z');
      Object.assign(h.partakes[0], { sentAt: t, okAt: t + 50 });
      Object.assign(h.partakes[1], { sentAt: t, okAt: t + 50 });
      for (const r of s.raffle) r.order_time = new Date(t + 20);
      for (const d of s.days) d.day = '2026-05-31';
      for (const m of s.months) m.month = '2026-05';
    },
    { ...LAYOUT, timeZone: 'Asia/Shanghai' },
  ));

test('a month row that does not count the orders of the month the test saw', () =>
  fails('month-row', (_h, s) => {
    s.months[0]!.month_count_surplus = 1;
  }));

test("an order_time outside the test's own window around the call", () =>
  fails('order-time', (_h, s) => {
    s.raffle[0]!.order_time = new Date(T - 3_600_000);
  }));

test('a recharge with neither order nor rejection is lost', () =>
  fails('lost-recharge', (h) => {
    h.recharges.push({ userId: 'u9', outBusinessNo: 'r9', sku: 9011 });
  }));

test('an order and a rejection for one recharge is doubled', () =>
  fails('double-recharge', (_h, s) => {
    s.rejections.push({ ...s.rejections[0]!, user_id: 'u1', out_business_no: 'r1', code: 'ERR_BIZ_005' });
  }));

test('a completed task whose event never arrived is lost', () =>
  fails('lost-event', (h) => {
    h.events = h.events.filter((e: any) => e.key !== 'partake.created');
  }));

test('one effect under two message ids is doubled', () =>
  fails('double-event', (h) => {
    h.events.push({ ...h.events[0], messageId: 'another-id' });
  }));

test('a raffle order nobody got is an orphan', () =>
  fails('partake-orphan', (_h, s) => {
    s.raffle.push({ ...s.raffle[1]!, order_id: 'p7', order_state: 'used' });
  }));

test('two open raffle orders for one user', () =>
  fails('two-open', (h, s) => {
    s.raffle.push({ ...s.raffle[1]!, order_id: 'p8' });
    h.partakes.push({ userId: 'u2', activityId: 100301, replies: [{ code: '0000', orderId: 'p8' }], sentAt: T, okAt: T + 50 });
  }));

test('a row in the wrong shard', () =>
  fails('placement', (_h, s) => {
    s.orders[0]!.shard = s.orders[0]!.shard === 1 ? 2 : 1;
  }));

test('an account surplus that does not match its orders', () =>
  fails('account-surplus', (_h, s) => {
    s.accounts[2]!.total_count_surplus = 0;
  }));

test('a message dead-lettered that was no poison', () =>
  fails('dead-letter', (h) => {
    h.deadLetters = [{ messageId: 'm1', headers: { 'x-error': 'INVALID_MESSAGE' } }];
  }));

test('a poison message that is not in the dead-letter queue', () =>
  fails('poison-missing', (h) => {
    h.poison = [{ messageId: 'poison-1' }];
  }));

test('a task left pending once idle', () =>
  fails('task-pending', (_h, s) => {
    s.tasks[0]!.state = 'fail';
  }));

test.run();
