import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from '../../infra/db';
import { log } from '../../infra/log';
import { giveBackStock, legacyKeys, reservationField, reservedKey, stockKey, takeStock } from '../../infra/stock';
import { QUEUES } from '../../infra/topology';
import { startWorker, type Running } from '../support/workers';
import { reapReservations } from '../../workers/recharge/stock-jobs';
import { COUNTS, aSku, anActivity, counter, drained, load, openWorld, rows, surplus, tasks, waitFor, type World } from './recharge-world';

const test = suite('stock');
let w: World;

const OPEN = 100301;
const RUSH = 9021;
const FLUSHED = 9022;
const REAPED = 9023;
const LEGACY = 9024;

const catalog = (reapedStock = 10) => ({
  activities: [anActivity(OPEN)],
  counts: [COUNTS],
  skus: [aSku(RUSH, OPEN, 50), aSku(FLUSHED, OPEN, 100), aSku(REAPED, OPEN, reapedStock), aSku(LEGACY, OPEN, 10)],
});

let second: Running | undefined;

test.before(async () => {
  w = await openWorld(['recharge', 'stock-zero']);
  second = await startWorker('recharge', w.env.config); // two recharge workers race for stock, rebuilds and jobs
  second.ctx.log.level = 'warn';
  await load(w, catalog());
});
test.after(async () => {
  await second?.stop();
  await w?.close();
});

const publishMany = (sku: number, prefix: string, n: number) =>
  Promise.all(Array.from({ length: n }, (_, i) => w.client.publish(QUEUES.recharge, { userId: `${prefix}-${i}`, sku, outBusinessNo: `o-${i}` })));
const ordersOf = (sku: number) => rows(w, 'raffle_activity_order', 'sku = $1', [sku]);
const rejectionsOf = async (sku: number) => (await tasks(w, 'recharge.rejected')).filter((t) => t.message.data.sku === sku);
const settled = async (sku: number, n: number, timeoutMs = 40_000) =>
  waitFor(async () => (await ordersOf(sku)).length + (await rejectionsOf(sku)).length >= n, timeoutMs, `${n} outcomes for sku ${sku}`);

test('300 concurrent recharges against stock 50: 50 orders, 250 sold out, one stock-zero task, surplus 0', async () => {
  await publishMany(RUSH, 'rush', 300);
  await settled(RUSH, 300);
  assert.is((await ordersOf(RUSH)).length, 50);
  const rejected = await rejectionsOf(RUSH);
  assert.is(rejected.length, 250);
  assert.ok(rejected.every((t) => t.message.data.code === 'ERR_BIZ_005'));
  assert.is((await tasks(w, 'sku.stock_zero')).filter((t) => t.message.data.sku === RUSH).length, 1);
  assert.is(await counter(w, RUSH), 0);
  assert.is(await w.redis.hlen(reservedKey(RUSH)), 0);
  await waitFor(async () => (await surplus(w, RUSH)) === 0, 5_000, 'surplus 0');
});

test('stock-zero worker: surplus 0, a redelivery changes nothing, bad body dead-lettered', async () => {
  // Without a counter the stock sync leaves the SKU alone, so the surplus moves only by stock-zero.
  await w.redis.del(stockKey(RUSH));
  await sql(w.dbs.global, 'UPDATE raffle_activity_sku SET stock_count_surplus = 7 WHERE sku = $1', [RUSH]);
  const id = 'stock-zero-msg-1';
  await w.client.publish(QUEUES.stockZero, { sku: RUSH }, { messageId: id, envelope: true });
  await waitFor(async () => (await surplus(w, RUSH)) === 0, 10_000, 'surplus 0');
  await sql(w.dbs.global, 'UPDATE raffle_activity_sku SET stock_count_surplus = 5 WHERE sku = $1', [RUSH]);
  await w.client.publish(QUEUES.stockZero, { sku: RUSH }, { messageId: id, envelope: true });
  await drained(w, QUEUES.stockZero);
  assert.is(await surplus(w, RUSH), 5);
  const bad = await w.client.publish(QUEUES.stockZero, { sku: 'nine' });
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === bad);
  assert.match(String(dl.props.headers?.['x-error']), 'sku');
  await w.redis.set(stockKey(RUSH), 0); // sold out, as before
  await waitFor(async () => (await surplus(w, RUSH)) === 0, 5_000, 'the sync writes the counter again');
});

test('Redis flushed in the middle of a stream: orders never exceed the stock, none leaked', async () => {
  const streaming = publishMany(FLUSHED, 'flush', 300);
  await waitFor(async () => (await ordersOf(FLUSHED)).length >= 15, 20_000, 'some orders');
  // MULTI keeps this world's marker key, so no parallel test run can claim the emptied db.
  // A restarted Redis has lost the data and the loaded Lua scripts too (EVALSHA answers NOSCRIPT).
  await w.redis.multi().flushdb().set('aq:test:owner', w.env.id, 'EX', 3600).exec();
  await w.redis.script('FLUSH');
  await streaming;
  await settled(FLUSHED, 300);
  assert.is((await ordersOf(FLUSHED)).length, 100);
  assert.is((await rejectionsOf(FLUSHED)).length, 200);
  assert.is(await counter(w, FLUSHED), 0);
  await waitFor(async () => (await surplus(w, FLUSHED)) === 0, 5_000, 'surplus 0');
});

test('surplus follows the live counter in batches and equals stock - orders once idle', async () => {
  await publishMany(REAPED, 'sync', 4);
  await settled(REAPED, 4);
  assert.is(await counter(w, REAPED), 6);
  await waitFor(async () => (await surplus(w, REAPED)) === 6, 5_000, 'surplus 6');
});

test("the reaper gives back a crashed attempt's unit and only releases one whose order committed", async () => {
  const [committed] = await ordersOf(REAPED);
  const old = Number((await w.redis.time())[0]) - 120;
  await w.redis.decrby(stockKey(REAPED), 2);
  await w.redis.hset(reservedKey(REAPED), reservationField('crashed', 'c-1', '111111111111'), old);
  await w.redis.hset(reservedKey(REAPED), reservationField(committed!.user_id, committed!.out_business_no, committed!.order_id), old);
  const fresh = reservationField('inflight', 'i-1', '222222222222');
  await w.redis.hset(reservedKey(REAPED), fresh, old + 110);
  assert.is(await counter(w, REAPED), 4);
  // The worker's own reaper may get there first; either way the end state is the same.
  const r = await reapReservations(w.dbs, w.redis, log);
  assert.ok(r.returned <= 1 && r.released <= 1);
  assert.is(await counter(w, REAPED), 5); // the committed order's unit stays sold
  assert.equal(await w.redis.hkeys(reservedKey(REAPED)), [fresh]);
  await w.redis.hdel(reservedKey(REAPED), fresh);
  await w.redis.incr(stockKey(REAPED));
});

test('upgrade from the untagged key layout: the old counter is ignored, the new one rebuilt from the ledger, old keys dropped', async () => {
  await publishMany(LEGACY, 'legacy', 3);
  await settled(LEGACY, 3);
  const [oldCounter, oldReserved] = legacyKeys(LEGACY);
  // What the previous version left: its counter (wrong on purpose), a reservation, the dirty set entry.
  await w.redis.set(oldCounter!, 99);
  await w.redis.hset(oldReserved!, reservationField('old', 'o-1', '444444444444'), 1);
  await w.redis.sadd('activity:stock:dirty', String(LEGACY));
  await w.redis.del(stockKey(LEGACY), reservedKey(LEGACY)); // the new version's keys do not exist yet
  await publishMany(LEGACY, 'legacy-after', 1);
  await settled(LEGACY, 4);
  assert.is((await ordersOf(LEGACY)).length, 4);
  assert.is(await counter(w, LEGACY), 10 - 4);
  assert.is(await w.redis.exists(oldCounter!, oldReserved!), 0);
  assert.is(await w.redis.sismember('activity:stock:dirty', String(LEGACY)), 0);
});

test('a take re-sent after a lost reply takes no second unit', async () => {
  const before = Number(await counter(w, REAPED));
  const first = await takeStock(w.redis, REAPED, 'resent', 'r-1', '333333333333');
  const again = await takeStock(w.redis, REAPED, 'resent', 'r-1', '333333333333');
  assert.is(first.kind, 'taken');
  assert.equal(again, first);
  assert.is(await counter(w, REAPED), before - 1);
  if (first.kind === 'taken') assert.ok(await giveBackStock(w.redis, first.reservation));
  assert.is(await counter(w, REAPED), before);
});

test('no unit left while one is still reserved: not sold out (pending) until the reservation settles', async () => {
  const saved = await counter(w, REAPED);
  await w.redis.set(stockKey(REAPED), 0);
  const open = reservationField('inflight', 'p-1', '555555555555');
  await w.redis.hset(reservedKey(REAPED), open, Number((await w.redis.time())[0]));
  assert.equal(await takeStock(w.redis, REAPED, 'late', 'l-1', '666666666666'), { kind: 'pending' });
  await w.redis.hdel(reservedKey(REAPED), open); // it committed (released) or went back: either way it is settled now
  assert.equal(await takeStock(w.redis, REAPED, 'late', 'l-1', '666666666666'), { kind: 'sold-out' });
  await w.redis.set(stockKey(REAPED), String(saved));
});

test('a catalog reload with a larger stock adds the difference to the live counter', async () => {
  await load(w, catalog(15));
  assert.is(await counter(w, REAPED), 11);
  await waitFor(async () => (await surplus(w, REAPED)) === 11, 5_000, 'surplus 11');
});

test.run();
