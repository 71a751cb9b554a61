import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { route } from '../../domain/router';
import { rebateBizId } from '../../domain/recharge';
import { sql } from '../../infra/db';
import { QUEUES } from '../../infra/topology';
import { COUNTS, aSku, anActivity, load, openWorld, type World } from './recharge-world';
import { cancel, history, partake, rpc, use } from './lifecycle-world';

const test = suite('ids');
let w: World;

const A = 100301;
const SKU = 9011;
const SIGN = 9031;
/** A behavior as odd as the ids: quotes, a semicolon, CJK, an emoji. */
const BEHAVIOR = `签到 "daily"; 😀 ' --`;

/** Printable ids a real caller may send (contract §6 Ids): all are stored and answered verbatim. */
const IDS = ["o'brien", 'say "hi"; \\ `x`', "x'); DROP TABLE raffle_activity_account; --", '张三', '用户😀', '👨‍👩‍👧‍👦 family', '%_like_%', '$1 $2', ' spaced ', '😀'.repeat(128)];

test.before(async () => {
  w = await openWorld(['recharge', 'partake']);
  await load(w, {
    activities: [anActivity(A)],
    counts: [COUNTS],
    skus: [aSku(SKU, A, 100_000), aSku(SIGN, A, -1)],
    behaviorRebates: [{ behavior: BEHAVIOR, sku: SIGN, desc: 'odd sign-in', state: 'open' }],
  });
});
test.after(async () => w?.close());

/** Where a family's rows of this user are: `shard:suffix` for every split table that has some. */
async function placement(family: string, userId: string): Promise<string[]> {
  const out: string[] = [];
  for (const { shard, ds } of w.dbs.shards) {
    for (const s of w.dbs.suffixes) {
      const { rows } = await sql<{ n: number }>(ds, `SELECT count(*)::int AS n FROM ${family}_${s} WHERE user_id = $1`, [userId]);
      if (rows[0]!.n) out.push(`${shard}:${s}`);
    }
  }
  return out;
}

async function accountShards(userId: string): Promise<number[]> {
  const out: number[] = [];
  for (const { shard, ds } of w.dbs.shards) if ((await sql(ds, 'SELECT 1 FROM raffle_activity_account WHERE user_id = $1', [userId])).rows.length) out.push(shard);
  return out;
}

test('recharge, behavior, partake, query, use, cancel and history take any printable id and keep it verbatim on the routed shard', async () => {
  for (const u of IDS) {
    const r = route(u, w.dbs.shards.length, w.dbs.tableCount);
    const here = `${r.shard}:${r.suffix}`;
    await w.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: u });
    const ev = await w.client.waitEvent((e) => e.key === 'recharge.completed' && e.data?.userId === u, 15_000, `credit of ${u}`);
    assert.is(ev.data.outBusinessNo, u);
    await w.client.publish(QUEUES.behavior, { userId: u, behavior: BEHAVIOR, outBusinessNo: u });
    await w.client.waitEvent((e) => e.key === 'recharge.completed' && e.data?.userId === u && e.data?.sku === SIGN, 15_000, `rebate of ${u}`);

    const { ds } = w.dbs.forUser(u);
    const order = (await sql<any>(ds, `SELECT user_id, out_business_no FROM raffle_activity_order_${r.suffix} WHERE user_id = $1 AND sku = $2`, [u, SKU])).rows;
    assert.equal(order, [{ user_id: u, out_business_no: u }], u);
    const rebate = (await sql<any>(ds, `SELECT user_id, behavior_type, out_business_no, biz_id FROM user_behavior_rebate_order_${r.suffix} WHERE user_id = $1`, [u])).rows;
    assert.equal(rebate, [{ user_id: u, behavior_type: BEHAVIOR, out_business_no: u, biz_id: rebateBizId(u, BEHAVIOR, SIGN, u) }], u);

    const p = await partake(w, u, A);
    assert.is(p.code, '0000', u);
    assert.is(p.data.userId, u);
    assert.is((await rpc(w, QUEUES.accountQuery, { userId: u, activityId: A })).data.totalCountSurplus, 19, u);
    assert.is((await use(w, u, p.data.orderId)).code, '0000', u);
    const q = await partake(w, u, A);
    const c = await cancel(w, u, q.data.orderId);
    assert.equal([c.code, c.data.userId], ['0000', u]);
    const cancelled = await w.client.waitEvent((e) => e.key === 'raffle-order.cancelled' && e.data?.orderId === q.data.orderId, 10_000);
    assert.is(cancelled.data.userId, u);
    const h = (await history(w, { userId: u, activityId: A })).data;
    const bizId = rebateBizId(u, BEHAVIOR, SIGN, u);
    assert.equal(h.recharges.find((x: any) => x.sku === SKU)?.outBusinessNo, u);
    // The rebate's recharge is keyed by its biz id, hashed when that is over 128 characters.
    const rebateKey = h.recharges.find((x: any) => x.sku === SIGN)?.outBusinessNo;
    if (bizId.length <= 128) assert.is(rebateKey, bizId, u);
    else assert.match(rebateKey, /^rebate_[0-9a-f]{64}$/, u);
    assert.equal(
      h.raffleOrders.map((x: any) => x.orderState),
      ['cancel', 'used'],
      u,
    );

    for (const family of ['raffle_activity_order', 'user_raffle_order', 'user_behavior_rebate_order']) assert.equal(await placement(family, u), [here], `${family} of ${u}`);
    assert.equal(await accountShards(u), [r.shard], `account of ${u}`);
  }
});

test('a control character, a lone surrogate, an empty or a 129-character id is refused the same way on every queue', async () => {
  const bad = ['a\u0000b', 'tab\there', '\u0085', 'x\ud800', '', 'a'.repeat(129), '😀'.repeat(129)];
  for (const id of bad) {
    for (const [queue, payload] of [
      [QUEUES.partake, { userId: id, activityId: A }],
      [QUEUES.accountQuery, { userId: id, activityId: A }],
      [QUEUES.accountHistory, { userId: id, activityId: A }],
      [QUEUES.raffleOrderUsed, { userId: id, orderId: '1' }],
      [QUEUES.raffleOrderCancel, { userId: id, orderId: '1' }],
    ] as const) {
      const r = await rpc(w, queue, payload);
      assert.is(r.code, '0002', `${queue} ${JSON.stringify(id)}`);
      assert.match(r.info, 'userId');
    }
    for (const [queue, payload, name] of [
      [QUEUES.recharge, { userId: 'ok', sku: SKU, outBusinessNo: id }, 'outBusinessNo'],
      [QUEUES.behavior, { userId: 'ok', behavior: id, outBusinessNo: 'x' }, 'behavior'],
      [QUEUES.raffleOrderCancel, { userId: id, orderId: '1' }, 'userId'],
    ] as const) {
      const mid = await w.client.publish(queue, payload);
      const dl = await w.client.waitDeadLetter((d) => d.props.messageId === mid);
      assert.match(String(dl.props.headers?.['x-error']), `INVALID_MESSAGE: ${name}`, `${queue} ${JSON.stringify(id)}`);
    }
  }
  assert.equal(await placement('raffle_activity_order', 'ok'), []);
});

test.run();
