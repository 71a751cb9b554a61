import { randomBytes } from 'node:crypto';
import { Redis as Single } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../infra/config';
import { log } from '../../infra/log';
import { mastersOf } from '../../infra/redis';
import { ensureStock, giveBackStock, rebuildLockKey, releaseStock, reservationField, reservedKey, stockKey, takeStock } from '../../infra/stock';
import { QUEUES } from '../../infra/topology';
import { reapReservations } from '../../workers/recharge/stock-jobs';
import { privateWorld, type PrivateWorld } from '../cluster/private';
import { holdReplication, killRedisNode, masterOfKey, replicaOf, startRedisNode, waitForPromotion, type RedisNode } from '../cluster/world';
import { redisHealthy } from '../cluster/redis-nodes';
import { until } from '../cluster/layout';
import { startWorker } from '../support/workers';
import { COUNTS, aSku, anActivity, counter, load, openWorld, rows, surplus, tasks, waitFor, type World } from './recharge-world';

/**
 * The stock protocol on a real Redis Cluster (3 masters + 3 replicas of this file's own), with the
 * recharge worker, shards on two PostgreSQL servers, and a master killed with replication held back.
 */
const test = suite('redis-cluster');
let cw: PrivateWorld;
let w: World;
const PREFIX = `aqt${randomBytes(3).toString('hex')}:`;
const OPEN = 100301;
// Three SKUs per role, one on each master; found in `before` (slots depend on the numbers).
let spread: number[] = [];
const GUARDED = 8801; // failover with REDIS_WAIT_REPLICAS=1
const UNGUARDED = 8802; // the same failover without waiting for a replica: the control
const STOCK = 20;

const key = (sku: number) => PREFIX + stockKey(sku);
const ordersOf = (sku: number) => rows(w, 'raffle_activity_order', 'sku = $1', [sku]);
const rejectionsOf = async (sku: number) => (await tasks(w, 'recharge.rejected')).filter((t) => t.message.data.sku === sku);
const settled = (sku: number, n: number, timeoutMs = 60_000) => waitFor(async () => (await ordersOf(sku)).length + (await rejectionsOf(sku)).length >= n, timeoutMs, `${n} outcomes for sku ${sku}`);
const publishMany = (sku: number, prefix: string, n: number) =>
  Promise.all(Array.from({ length: n }, (_, i) => w.client.publish(QUEUES.recharge, { userId: `${prefix}-${i}`, sku, outBusinessNo: `o-${i}` })));

test.before(async () => {
  await setUp().catch((err) => {
    // uvu reports a failed hook only as failed tests: say why.
    process.stderr.write(`redis-cluster: set-up failed: ${(err as Error).stack}\n`);
    throw err;
  });
});

async function setUp(): Promise<void> {
  cw = await privateWorld(['redis', 'postgresql']);
  w = await openWorld(['recharge'], {
    shards: 4,
    shardServers: cw.env.AQ_CLUSTER_PG_BASES!.split(','),
    extra: { REDIS_URL: '', REDIS_CLUSTER_NODES: cw.env.REDIS_CLUSTER_NODES!, REDIS_KEY_PREFIX: PREFIX, REDIS_WAIT_TIMEOUT_MS: '500' },
  });
  const byMaster = new Map<number, number>();
  for (let sku = 9100; byMaster.size < 3; sku++) {
    const m = await masterOfKey(cw.layout, key(sku));
    if (!byMaster.has(m.port)) byMaster.set(m.port, sku);
  }
  spread = [...byMaster.values()];
  await load(w, { activities: [anActivity(OPEN)], counts: [COUNTS], skus: [...spread, GUARDED, UNGUARDED].map((s) => aSku(s, OPEN, STOCK)) });
}

// Each step has a deadline: a CI run once passed all 7 tests and then hung until the runner killed
// the file at 600 s (a client of a killed node can wait forever). The world's Redis goes with
// `down()`, keys and all; whatever handle is still open after it must not hold the process.
test.after(async () => {
  const step = (what: string, run: () => Promise<unknown> | undefined) =>
    Promise.race([run(), new Promise((resolve) => setTimeout(resolve, 15_000).unref()).then(() => process.stderr.write(`redis-cluster: ${what} took over 15 s: going on\n`))]);
  await step('closing the service', () => w?.close());
  await step('taking the world down', () => cw?.down());
  setTimeout(() => {
    process.stderr.write('redis-cluster: handles still open after the tests: exiting\n');
    process.exit();
  }, 5_000).unref();
});

test("the world: shards on two servers, the service on the cluster, a SKU's keys in one slot", async () => {
  const ports = new Set(w.env.config.shardUrls.map((u) => new URL(u).port || '5432'));
  assert.is(ports.size, 2, 'shard databases on two PostgreSQL servers');
  assert.ok(w.env.config.redisCluster, 'cluster mode');
  assert.is(w.redis.replicaAck?.replicas, 1, 'takes wait for one replica by default in cluster mode');
  const node = new Single({ host: '127.0.0.1', port: cw.layout.redisPorts[0]!, lazyConnect: true });
  await node.connect();
  const slots = await Promise.all([PREFIX + stockKey(42), PREFIX + reservedKey(42), PREFIX + rebuildLockKey(42)].map((k) => node.call('CLUSTER', 'KEYSLOT', k)));
  node.disconnect();
  assert.is(new Set(slots).size, 1, `slots ${slots.join(', ')}`);
  assert.is(spread.length, 3);
});

test('take, release, give back on the cluster: a take returns only once its replica holds it', async () => {
  const sku = spread[0]!;
  const before = Number(await counter(w, sku));
  const t = await takeStock(w.redis, sku, 'direct', 'd-1', '100000000001');
  assert.is(t.kind, 'taken');
  if (t.kind !== 'taken') return;
  const master = await masterOfKey(cw.layout, key(sku));
  const replica = new Single({ host: '127.0.0.1', port: (await replicaOf(cw.layout, master)).port, lazyConnect: true });
  await replica.connect();
  await replica.call('READONLY');
  // Read on the replica right after the take returned: WAIT made sure it is there already.
  assert.ok(await replica.hexists(PREFIX + reservedKey(sku), t.reservation.field), 'the replica holds the reservation');
  assert.is(await replica.get(key(sku)), String(before - 1));
  replica.disconnect();
  assert.ok(await giveBackStock(w.redis, t.reservation));
  assert.not.ok(await giveBackStock(w.redis, t.reservation), 'a unit comes back once');
  assert.is(await counter(w, sku), before);
  const t2 = await takeStock(w.redis, sku, 'direct', 'd-2', '100000000002');
  if (t2.kind !== 'taken') return assert.unreachable(t2.kind);
  await releaseStock(w.redis, t2.reservation);
  assert.is(await w.redis.hlen(reservedKey(sku)), 0);
  await w.redis.incr(stockKey(sku)); // back to where it was for the next test
});

test('recharges on SKUs of all three masters: never more orders than stock, counters and surplus at 0', async () => {
  await Promise.all(spread.map((sku) => publishMany(sku, `rush${sku}`, 30)));
  for (const sku of spread) await settled(sku, 30);
  for (const sku of spread) {
    assert.is((await ordersOf(sku)).length, STOCK, `orders of ${sku}`);
    assert.is((await rejectionsOf(sku)).length, 10);
    assert.is(await counter(w, sku), 0);
    assert.is(await w.redis.hlen(reservedKey(sku)), 0);
    assert.is((await tasks(w, 'sku.stock_zero')).filter((t) => t.message.data.sku === sku).length, 1);
  }
  // The sync job has no dirty set: it reads the catalog's limited SKUs and writes what differs.
  for (const sku of spread) await waitFor(async () => (await surplus(w, sku)) === 0, 10_000, `surplus of ${sku} synced`);
});

test('counters lost on every master mid-stream are rebuilt from the ledger on both PostgreSQL servers', async () => {
  await load(w, { activities: [anActivity(OPEN)], counts: [COUNTS], skus: spread.map((s) => aSku(s, OPEN, STOCK + 10)) }); // 10 more each
  const streaming = Promise.all(spread.map((sku) => publishMany(sku, `lost${sku}`, 20)));
  await waitFor(async () => (await ordersOf(spread[0]!)).length >= STOCK + 2, 20_000, 'some new orders');
  for (const sku of spread) await w.redis.del(stockKey(sku), reservedKey(sku));
  await streaming;
  for (const sku of spread) await settled(sku, 50);
  for (const sku of spread) {
    assert.is((await ordersOf(sku)).length, STOCK + 10, `orders of ${sku} after the rebuild`);
    // A SKU whose stream had ended before its counter went is rebuilt by its next take: do that here.
    assert.is(await ensureStock(w.dbs, w.redis, sku), 'ready');
    assert.is(await counter(w, sku), 0);
  }
});

test('the reaper scans every master: orphans on three masters given back, a committed one released', async () => {
  await load(w, { activities: [anActivity(OPEN)], counts: [COUNTS], skus: spread.map((s) => aSku(s, OPEN, STOCK + 13)) }); // 3 units free each
  const [committed] = await ordersOf(spread[1]!);
  for (const sku of spread) {
    const old = Number((await mastersOf(w.redis)[0]!.time())[0]) - 120;
    await w.redis.decr(stockKey(sku));
    await w.redis.hset(reservedKey(sku), reservationField(`crashed${sku}`, 'c-1', '111111111111'), old);
  }
  await w.redis.hset(reservedKey(spread[1]!), reservationField(committed!.user_id, committed!.out_business_no, committed!.order_id), Number((await w.redis.time())[0]) - 120);
  const r = await reapReservations(w.dbs, w.redis, log);
  // The worker's own reaper may settle some first; the end state is the same.
  assert.ok(r.returned <= 3 && r.released <= 1, JSON.stringify(r));
  for (const sku of spread) {
    assert.is(await counter(w, sku), 3, `unit of ${sku} back`);
    assert.is(await w.redis.hlen(reservedKey(sku)), 0);
  }
  for (const sku of spread) await waitFor(async () => (await surplus(w, sku)) === 3, 10_000, `surplus of ${sku} = 3`);
});

/**
 * Sells 5 units, holds replication back, sends 5 more recharges, kills the master (kill -9) while
 * the replica still sleeps, waits for the replica's promotion, restarts the old master (it rejoins
 * as a replica), then sends 30 more. Returns the orders of the SKU.
 */
async function failover(sku: number): Promise<{ orders: number; duringHold: number; counter: number | null; promotedAfterMs: number }> {
  await publishMany(sku, `pre${sku}`, 5);
  await waitFor(async () => (await ordersOf(sku)).length === 5, 20_000, '5 orders before the hold');
  const master = await masterOfKey(cw.layout, key(sku));
  const replica: RedisNode = await replicaOf(cw.layout, master);
  await holdReplication(replica, master, 5_000);
  await publishMany(sku, `held${sku}`, 5);
  // Long enough for 5 takes (and, unguarded, their orders) on the master alone.
  await until('takes during the hold', 3_000, async () => ((await ordersOf(sku)).length >= 10 ? true : undefined), 100).catch(() => undefined);
  const duringHold = (await ordersOf(sku)).length;
  killRedisNode(cw.layout, master.port);
  const t0 = Date.now();
  const promoted = await waitForPromotion(cw.layout, key(sku), master.port, 30_000);
  const promotedAfterMs = Date.now() - t0;
  assert.is(promoted.port, replica.port);
  await startRedisNode(cw.layout, master.port);
  await until('cluster healthy again', 30_000, async () => ((await redisHealthy(cw.layout)) ? true : undefined), 250);
  await publishMany(sku, `post${sku}`, 30);
  await settled(sku, 40, 90_000);
  return { orders: (await ordersOf(sku)).length, duringHold, counter: await counter(w, sku), promotedAfterMs };
}

test('control: without WAIT, takes the killed master acknowledged but never replicated are sold again (oversell)', async () => {
  const main = w.workers.get('recharge')!;
  await main.stop();
  const unguarded = await startWorker('recharge', loadConfig({ ...w.env.env, REDIS_WAIT_REPLICAS: '0' }));
  unguarded.ctx.log.level = 'warn';
  try {
    const r = await failover(UNGUARDED);
    log.warn({ ...r, stock: STOCK }, 'unguarded failover');
    assert.is(r.duringHold, 10, 'without WAIT the held recharges committed on the master alone');
    assert.ok(r.orders > STOCK, `expected an oversell without WAIT, got ${r.orders} orders for stock ${STOCK}`);
  } finally {
    await unguarded.stop();
    w.workers.set('recharge', await startWorker('recharge', w.env.config));
  }
});

test('failover with replication held back: with WAIT for a replica, no oversell after the promotion', async () => {
  const worker = w.workers.get('recharge')!;
  worker.ctx.log.level = 'error';
  const r = await failover(GUARDED);
  log.warn({ ...r, stock: STOCK }, 'guarded failover');
  assert.is(r.duringHold, 5, 'no order commits while no replica confirms its take');
  assert.is(r.orders, STOCK, `orders ${r.orders} for stock ${STOCK}`);
  assert.is(r.counter, 0);
  assert.is((await rejectionsOf(GUARDED)).length, 40 - STOCK);
  assert.is(await w.redis.hlen(reservedKey(GUARDED)), 0, 'no unit left reserved');
  await waitFor(async () => (await surplus(w, GUARDED)) === 0, 10_000, 'surplus 0');
});

test.run();
