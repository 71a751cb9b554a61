import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { QUEUES } from '../../infra/topology';
import { COUNTS, aSku, account, anActivity, counter, drained, load, openWorld, rows, tasks, waitFor, type World } from './recharge-world';

const test = suite('behavior');
let w: World;

const OPEN = 100301;
const SIGN_SKU = 9031;
const BONUS_SKU = 9032;

test.before(async () => {
  w = await openWorld(['recharge']);
  await load(w, {
    activities: [anActivity(OPEN)],
    counts: [COUNTS],
    skus: [aSku(SIGN_SKU, OPEN, 100), aSku(BONUS_SKU, OPEN, -1), aSku(9033, OPEN, 100)],
    behaviorRebates: [
      { behavior: 'sign', sku: SIGN_SKU, desc: 'daily sign-in', state: 'open' },
      { behavior: 'pay', sku: SIGN_SKU, desc: 'pay rebate', state: 'open' },
      { behavior: 'pay', sku: BONUS_SKU, desc: 'pay bonus', state: 'open' },
      { behavior: 'share', sku: 9033, desc: 'closed rebate', state: 'close' },
    ],
  });
});
test.after(async () => w?.close());

const behave = (userId: string, behavior: string, outBusinessNo: string) => w.client.publish(QUEUES.behavior, { userId, behavior, outBusinessNo });
const rebatesOf = (userId: string) => rows(w, 'user_behavior_rebate_order', 'user_id = $1', [userId]);
const ordersOf = (userId: string) => rows(w, 'raffle_activity_order', 'user_id = $1', [userId]);

test('sign-in twice with the same outBusinessNo (and 10 copies at once): one rebate order, one credit', async () => {
  await behave('ann', 'sign', '2026-06-15');
  await waitFor(async () => (await ordersOf('ann')).length === 1, 10_000, 'credit');
  await behave('ann', 'sign', '2026-06-15');
  await Promise.all(Array.from({ length: 10 }, () => behave('ann', 'sign', '2026-06-15')));
  await drained(w, QUEUES.behavior);
  const rebates = await rebatesOf('ann');
  assert.is(rebates.length, 1);
  assert.is(rebates[0]!.biz_id, `ann_sign_${SIGN_SKU}_2026-06-15`);
  assert.is(rebates[0]!.rebate_config, String(SIGN_SKU));
  const orders = await ordersOf('ann');
  assert.is(orders.length, 1);
  assert.is(orders[0]!.out_business_no, rebates[0]!.biz_id);
  assert.is((await account(w, 'ann', OPEN))!.total_count, 10);
  assert.is(await counter(w, SIGN_SKU), 99);
  assert.is((await tasks(w, 'recharge.completed')).filter((t) => t.user_id === 'ann').length, 1);
});

test('the next day grants again', async () => {
  await behave('ann', 'sign', '2026-06-16');
  await waitFor(async () => (await ordersOf('ann')).length === 2, 10_000, 'second credit');
  assert.is((await rebatesOf('ann')).length, 2);
  assert.is((await account(w, 'ann', OPEN))!.total_count, 20);
});

test('a behavior with two open rebates grants both', async () => {
  await behave('ben', 'pay', 'p-1');
  await waitFor(async () => (await ordersOf('ben')).length === 2, 10_000, 'two credits');
  assert.equal((await ordersOf('ben')).map((o) => Number(o.sku)).sort(), [SIGN_SKU, BONUS_SKU]);
  assert.is((await rebatesOf('ben')).length, 2);
  assert.is((await account(w, 'ben', OPEN))!.total_count, 20);
});

test('a behavior without configuration (or only closed rebates) is acked, not dead-lettered, and grants nothing', async () => {
  const unknown = await behave('cid', 'dance', 'd-1');
  const closed = await behave('cid', 'share', 's-1');
  await drained(w, QUEUES.behavior);
  const dead = await w.client.deadLetters();
  assert.not.ok(dead.some((d) => d.props.messageId === unknown || d.props.messageId === closed));
  assert.is((await rebatesOf('cid')).length, 0);
  assert.is((await ordersOf('cid')).length, 0);
  assert.is(await counter(w, 9033), 100);
});

test('a malformed behavior is dead-lettered with the reason', async () => {
  const id = await w.client.publish(QUEUES.behavior, { userId: 'dan', outBusinessNo: 'x' });
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === id);
  assert.match(String(dl.props.headers?.['x-error']), 'behavior');
  assert.is((await rebatesOf('dan')).length, 0);
});

test.run();
