import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { periodOf } from '../../domain/calendar';
import { sql } from '../../infra/db';
import { QUEUES } from '../../infra/topology';
import { seedRaffleOrder } from '../support/seed';
import { COUNTS, aSku, anActivity, load, openWorld, type World } from './recharge-world';
import { cancel, cancelTasks, credited, partake, quotaRows, raffleOrders, stateOf, use, waitFor } from './lifecycle-world';

const test = suite('lifecycle');
let w: World;

const PLAIN = 100301; // unused orders never expire
const SHORT = 100302; // unused orders expire after TTL seconds
const TTL = 3;
const PLAIN_SKU = 9011;
const SHORT_SKU = 9012;

test.before(async () => {
  w = await openWorld(['recharge', 'partake']);
  await load(w, {
    activities: [anActivity(PLAIN), anActivity(SHORT, { raffleOrderTtlSeconds: TTL })],
    counts: [COUNTS],
    skus: [aSku(PLAIN_SKU, PLAIN, -1), aSku(SHORT_SKU, SHORT, -1)],
  });
});
test.after(async () => w?.close());

test('cancel on request: the order is cancelled and exactly one chance comes back, mirrors equal to the rows, with its event', async () => {
  await credited(w, 'carl', PLAIN_SKU, 'c-1');
  const p = await partake(w, 'carl', PLAIN);
  assert.is(p.code, '0000');
  const spent = await quotaRows(w, 'carl', PLAIN);
  assert.equal([spent.account!.total_count_surplus, spent.day.day_count_surplus, spent.month.month_count_surplus], [9, 2, 5]);

  const c = await cancel(w, 'carl', p.data.orderId);
  assert.is(c.code, '0000');
  assert.equal(c.data, { ...p.data, orderState: 'cancel', refund: { total: 1, day: 1, month: 1 } });
  const back = await quotaRows(w, 'carl', PLAIN);
  assert.equal(back.account, { total_count: 10, total_count_surplus: 10, day_count: 3, day_count_surplus: 3, month_count: 6, month_count_surplus: 6 });
  assert.equal(back.day, { day_count: 3, day_count_surplus: 3 });
  assert.equal(back.month, { month_count: 6, month_count_surplus: 6 });
  assert.is(await stateOf(w, 'carl', p.data.orderId), 'cancel');

  const [task] = await cancelTasks(w, p.data.orderId);
  assert.equal(task.message.data, { orderId: p.data.orderId, userId: 'carl', activityId: PLAIN, refund: { total: 1, day: 1, month: 1 } });
  const event = await w.client.waitEvent((e) => e.key === 'raffle-order.cancelled' && e.data?.orderId === p.data.orderId, 5_000);
  assert.is(event.props.messageId, task.message_id);
  assert.is(event.body.id, task.message_id);

  // Once cancelled: neither a use nor a second cancel changes anything; an unknown order is 010.
  assert.equal([(await use(w, 'carl', p.data.orderId)).code, (await cancel(w, 'carl', p.data.orderId)).code], ['ERR_BIZ_009', 'ERR_BIZ_009']);
  assert.is((await cancel(w, 'carl', '999999999999')).code, 'ERR_BIZ_010');
  assert.is((await cancel(w, 'someone-else', p.data.orderId)).code, 'ERR_BIZ_010');
  assert.equal((await quotaRows(w, 'carl', PLAIN)).account, back.account);
  assert.is((await cancelTasks(w, p.data.orderId)).length, 1);
  // The chance is spendable again: a new order.
  const again = await partake(w, 'carl', PLAIN);
  assert.is(again.code, '0000');
  assert.is.not(again.data.orderId, p.data.orderId);
});

test('cancel after use changes nothing (009); cancel without replyTo is applied, a refusal only logged', async () => {
  await credited(w, 'uma', PLAIN_SKU, 'u-1');
  const p = await partake(w, 'uma', PLAIN);
  assert.is((await use(w, 'uma', p.data.orderId)).code, '0000');
  const before = await quotaRows(w, 'uma', PLAIN);
  assert.is((await cancel(w, 'uma', p.data.orderId)).code, 'ERR_BIZ_009');
  assert.equal(await quotaRows(w, 'uma', PLAIN), before);
  assert.is(await stateOf(w, 'uma', p.data.orderId), 'used');
  assert.is((await cancelTasks(w, p.data.orderId)).length, 0);

  const q = await partake(w, 'uma', PLAIN);
  await w.client.publish(QUEUES.raffleOrderCancel, { userId: 'uma', orderId: q.data.orderId });
  await waitFor(async () => (await stateOf(w, 'uma', q.data.orderId)) === 'cancel', 10_000, 'cancel without replyTo');
  const refused = await w.client.publish(QUEUES.raffleOrderCancel, { userId: 'uma', orderId: q.data.orderId });
  const bad = await w.client.publish(QUEUES.raffleOrderCancel, { userId: 'uma' });
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === bad);
  assert.match(String(dl.props.headers?.['x-error']), 'orderId');
  assert.not.ok(
    (await w.client.deadLetters()).some((d) => d.props.messageId === refused),
    'a refusal without replyTo is not dead-lettered',
  );
  assert.is((await quotaRows(w, 'uma', PLAIN)).account!.total_count_surplus, 9);
});

test('a use or cancel delivered again after it applied (same message id) gets its first answer; another request gets 009', async () => {
  await credited(w, 'rita', PLAIN_SKU, 'r-1');
  const rpcAs = (queue: string, orderId: string, messageId: string) => w.client.rpc(queue, { userId: 'rita', orderId }, { messageId }).then((r) => r.body);
  const p = await partake(w, 'rita', PLAIN);
  const first = await rpcAs(QUEUES.raffleOrderUsed, p.data.orderId, 'use-rita-1');
  assert.is(first.code, '0000');
  // As after a worker that died between commit and reply: the broker delivers the same message again.
  assert.equal(await rpcAs(QUEUES.raffleOrderUsed, p.data.orderId, 'use-rita-1'), first);
  assert.is((await rpcAs(QUEUES.raffleOrderUsed, p.data.orderId, 'use-rita-2')).code, 'ERR_BIZ_009');
  assert.is((await rpcAs(QUEUES.raffleOrderCancel, p.data.orderId, 'use-rita-1')).code, 'ERR_BIZ_009', "the use's id does not make a cancel succeed");

  const q = await partake(w, 'rita', PLAIN);
  const c1 = await rpcAs(QUEUES.raffleOrderCancel, q.data.orderId, 'cancel-rita-1');
  assert.equal(c1.data?.refund, { total: 1, day: 1, month: 1 });
  const refunded = await quotaRows(w, 'rita', PLAIN);
  assert.equal(await rpcAs(QUEUES.raffleOrderCancel, q.data.orderId, 'cancel-rita-1'), c1);
  assert.is((await rpcAs(QUEUES.raffleOrderCancel, q.data.orderId, 'cancel-rita-2')).code, 'ERR_BIZ_009');
  assert.is((await rpcAs(QUEUES.raffleOrderUsed, q.data.orderId, 'cancel-rita-1')).code, 'ERR_BIZ_009', "the cancel's id does not make a use succeed");
  assert.equal(await quotaRows(w, 'rita', PLAIN), refunded, 'refunded once');
  assert.is((await cancelTasks(w, q.data.orderId)).length, 1);
});

test("an order of an earlier day refunds the total (and the month only if it is this month), never today's row", async () => {
  await credited(w, 'olga', PLAIN_SKU, 'o-1');
  const today = await partake(w, 'olga', PLAIN);
  assert.is((await use(w, 'olga', today.data.orderId)).code, '0000'); // today's rows exist: 2 left of 3, 5 of 6
  // An unused order made yesterday, as if partaken then (its deduction is in the total).
  const { ds } = w.dbs.forUser('olga');
  const yesterday = new Date(Date.now() - 86_400_000);
  await seedRaffleOrder(w.dbs, { userId: 'olga', orderId: '100000000001', activityId: PLAIN, orderTime: yesterday });
  await sql(ds, `UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1 WHERE user_id = 'olga' AND activity_id = $1`, [PLAIN]);
  const before = await quotaRows(w, 'olga', PLAIN);
  const sameMonth = periodOf(yesterday, 'UTC').month === periodOf(new Date(), 'UTC').month;
  const c = await cancel(w, 'olga', '100000000001');
  assert.equal(c.data.refund, { total: 1, day: 0, month: sameMonth ? 1 : 0 });
  const after = await quotaRows(w, 'olga', PLAIN);
  assert.is(after.account!.total_count_surplus, before.account!.total_count_surplus! + 1);
  assert.equal(after.day, before.day);
  assert.equal(after.month.month_count_surplus, before.month.month_count_surplus + (sameMonth ? 1 : 0));
  assert.equal([after.account!.day_count_surplus, after.account!.month_count_surplus], [after.day.day_count_surplus, after.month.month_count_surplus]);
});

test('expiry: an unused order of a TTL activity is cancelled within 10 s after its TTL, refunded once; other orders stay', async () => {
  await credited(w, 'ed', SHORT_SKU, 'e-1');
  await credited(w, 'ed', PLAIN_SKU, 'e-2');
  const short = await partake(w, 'ed', SHORT);
  const plain = await partake(w, 'ed', PLAIN);
  const made = Date.parse(short.data.orderTime);
  await new Promise((r) => setTimeout(r, (TTL - 1) * 1000));
  assert.is(await stateOf(w, 'ed', short.data.orderId), 'create', 'not before its TTL');
  const event = await w.client.waitEvent((e) => e.key === 'raffle-order.cancelled' && e.data?.orderId === short.data.orderId, (TTL + 10) * 1000);
  const lag = Date.now() - made - TTL * 1000;
  assert.ok(lag < 10_000, `cancelled ${lag} ms after reaching its TTL`);
  assert.equal(event.data.refund, { total: 1, day: 1, month: 1 });
  assert.is(await stateOf(w, 'ed', short.data.orderId), 'cancel');
  assert.equal((await quotaRows(w, 'ed', SHORT)).account, { total_count: 10, total_count_surplus: 10, day_count: 3, day_count_surplus: 3, month_count: 6, month_count_surplus: 6 });
  assert.is((await use(w, 'ed', short.data.orderId)).code, 'ERR_BIZ_009');
  assert.is(await stateOf(w, 'ed', plain.data.orderId), 'create');
  assert.is((await cancelTasks(w, short.data.orderId)).length, 1);
});

test('expiry with three partake workers: 60 orders, each cancelled and refunded exactly once', async () => {
  const extra = [await startExtra(), await startExtra()];
  try {
    const users = Array.from({ length: 60 }, (_, i) => `exp-${i}`);
    await Promise.all(users.map((u) => credited(w, u, SHORT_SKU, `x-${u}`)));
    const orders = await Promise.all(users.map((u) => partake(w, u, SHORT)));
    assert.ok(orders.every((o) => o.code === '0000'));
    await waitFor(
      async () => {
        for (const [i, u] of users.entries()) if ((await stateOf(w, u, orders[i].data.orderId)) !== 'cancel') return false;
        return true;
      },
      (TTL + 15) * 1000,
      'every order expired',
    );
    await new Promise((r) => setTimeout(r, 3_000)); // another round of every instance
    for (const [i, u] of users.entries()) {
      assert.is((await cancelTasks(w, orders[i].data.orderId)).length, 1, u);
      assert.is((await quotaRows(w, u, SHORT)).account!.total_count_surplus, 10, u);
    }
  } finally {
    for (const r of extra) await r.stop();
  }
});

test('cancel and use racing on the same orders (two partake workers): exactly one wins each time, the refund is exact', async () => {
  const extra = await startExtra();
  try {
    const users = Array.from({ length: 40 }, (_, i) => `race-${i}`);
    await Promise.all(users.map((u) => credited(w, u, PLAIN_SKU, `r-${u}`)));
    for (let round = 0; round < 3; round++) {
      const orders = await Promise.all(users.map((u) => partake(w, u, PLAIN)));
      const replies = await Promise.all(
        users.map((u, i) => {
          const orderId = orders[i].data.orderId;
          // Odd users: the cancel is sent first; even: the use. Both are in flight together.
          const pair = i % 2 ? [cancel(w, u, orderId), use(w, u, orderId)] : [use(w, u, orderId), cancel(w, u, orderId)].reverse();
          return Promise.all(pair);
        }),
      );
      for (const [i, u] of users.entries()) {
        const [c, us] = replies[i]!;
        const orderId = orders[i].data.orderId;
        assert.equal([c.code, us.code].sort(), ['0000', 'ERR_BIZ_009'], `${u} round ${round}: one winner`);
        const state = await stateOf(w, u, orderId);
        assert.is(state, c.code === '0000' ? 'cancel' : 'used');
        assert.is((await cancelTasks(w, orderId)).length, c.code === '0000' ? 1 : 0);
      }
    }
    for (const u of users) {
      const spent = (await raffleOrders(w, u)).filter((o) => o.order_state !== 'cancel').length;
      const q = await quotaRows(w, u, PLAIN);
      assert.is(q.account!.total_count_surplus, 10 - spent, `${u}: ${spent} chances spent`);
      assert.equal([q.account!.day_count_surplus, q.account!.month_count_surplus], [q.day.day_count_surplus, q.month.month_count_surplus], `${u}: mirrors`);
      assert.is(q.day.day_count_surplus, 3 - spent);
    }
  } finally {
    await extra.stop();
  }
});

async function startExtra() {
  const { startWorker } = await import('../support/workers');
  const r = await startWorker('partake', w.env.config);
  r.ctx.log.level = w.env.env.LOG_LEVEL ?? 'warn';
  return r;
}

test.run();
