import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { sql, transaction } from '../../infra/db';
import { log } from '../../infra/log';
import { enqueue } from '../../infra/outbox';
import { reservationField, reservedKey, stockKey } from '../../infra/stock';
import { QUEUES } from '../../infra/topology';
import { reapReservations } from '../../workers/recharge/stock-jobs';
import { privateWorld, type PrivateWorld } from '../cluster/private';
import { npmScript } from '../support/workers';
import { COUNTS, aSku, anActivity, counter, openWorld, rows, surplus, waitFor, type World } from './recharge-world';

/**
 * Four shard databases on two PostgreSQL servers (the machine's and one of this file's own):
 * migrate, catalog load, recharge, partake, the fast path and the cron relay, `npm run tasks`,
 * the stock rebuild and the stock jobs, each reaching the shards of both servers.
 */
const test = suite('shards-two-servers');
let cw: PrivateWorld;
let w: World;
const OPEN = 100301;
const SKU = 9301;
const STOCK = 30;
/** One user per shard (1..4): shards 1 and 3 on one server, 2 and 4 on the other. */
const users: string[] = [];

const serverOf = (shard: number) => new URL(w.env.config.shardUrls[shard - 1]!).port || '5432';
const ordersOf = (sku: number) => rows(w, 'raffle_activity_order', 'sku = $1', [sku]);

test.before(async () => {
  cw = await privateWorld(['postgresql']);
  w = await openWorld(['recharge', 'partake', 'stock-zero', 'task-compensation'], { shards: 4, tables: 4, shardServers: cw.env.AQ_CLUSTER_PG_BASES!.split(',') });
  for (let i = 0; users.filter(Boolean).length < 4; i++) {
    const shard = w.dbs.forUser(`u${i}`).shard;
    if (!users[shard - 1]) users[shard - 1] = `u${i}`;
    if (i > 1000) throw new Error('router never picked some shard');
  }
});

test.after(async () => {
  await w?.close();
  await cw?.down();
});

test('npm run migrate created the shard databases on each server and is idempotent', async () => {
  assert.equal([1, 2, 3, 4].map(serverOf), ['5432', String(cw.layout.pg.port), '5432', String(cw.layout.pg.port)]);
  for (const [i, url] of w.env.config.shardUrls.entries()) {
    const admin = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [new URL(url).pathname.slice(1)]);
    await admin.end();
    assert.is(rowCount, 1, `shard ${i + 1} exists on its server`);
  }
  const out = await npmScript('migrate', [], { ...w.env.env, LOG_LEVEL: 'info' });
  assert.match(out, 'schema already up to date', out);
});

test('npm run catalog -- load warms the stock from a ledger on both servers', async () => {
  const file = path.join(os.tmpdir(), `${w.env.id}-catalog.json`);
  fs.writeFileSync(file, JSON.stringify({ activities: [anActivity(OPEN)], counts: [COUNTS], skus: [aSku(SKU, OPEN, STOCK)] }));
  try {
    await npmScript('catalog', ['load', file], w.env.env);
  } finally {
    fs.rmSync(file, { force: true });
  }
  assert.is(await counter(w, SKU), STOCK);
});

test('recharge and partake for a user on every shard: orders, accounts, replies and events', async () => {
  for (const u of users) await w.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: `first-${u}` });
  await waitFor(async () => (await ordersOf(SKU)).length === 4, 20_000, 'an order per shard');
  for (const [i, u] of users.entries()) {
    const { rows: own } = await sql(w.dbs.shards[i]!.ds, `SELECT 1 FROM raffle_activity_order_${w.dbs.forUser(u).suffix} WHERE user_id = $1`, [u]);
    assert.is(own.length, 1, `order of ${u} in shard ${i + 1} (server :${serverOf(i + 1)})`);
    const reply = await w.client.rpc(QUEUES.partake, { userId: u, activityId: OPEN }, { timeoutMs: 10_000 });
    assert.is(reply.body.code, '0000', JSON.stringify(reply.body));
  }
  await waitFor(() => w.client.events.filter((e) => e.key === 'recharge.completed' && users.includes(e.data.userId)).length === 4, 10_000, 'recharge.completed of every shard');
  await waitFor(() => w.client.events.filter((e) => e.key === 'partake.created' && users.includes(e.data.userId)).length === 4, 10_000, 'partake.created of every shard');
});

test('the cron relay publishes due tasks of both servers; npm run tasks lists and replays across them', async () => {
  const made: Array<{ messageId: string; shard: number }> = [];
  for (const u of users) {
    const db = w.dbs.forUser(u);
    const [t] = await transaction(db.ds, (tx) => enqueue(tx, [{ topic: 'recharge.completed', userId: u, data: { userId: u, probe: 'cron' } }], new Date()));
    made.push({ messageId: t!.messageId, shard: db.shard });
  }
  await waitFor(() => made.every((m) => w.client.events.some((e) => e.props.messageId === m.messageId)), 15_000, 'every task relayed');
  const listed = JSON.parse(await npmScript('tasks', ['list', '--limit', '1000', '--json'], w.env.env)) as Array<{ shard: number; message_id: string; state: string }>;
  assert.equal(new Set(listed.map((r) => r.shard)), new Set([1, 2, 3, 4]));
  for (const m of made) assert.is(listed.find((r) => r.message_id === m.messageId)?.state, 'completed');
  const onSecond = made.find((m) => m.shard === 4)!;
  const seen = w.client.events.filter((e) => e.props.messageId === onSecond.messageId).length;
  const { replayed } = JSON.parse(await npmScript('tasks', ['replay', '--id', onSecond.messageId, '--json'], w.env.env)) as { replayed: Array<{ shard: number }> };
  assert.equal(
    replayed.map((r) => r.shard),
    [4],
  );
  await waitFor(() => w.client.events.filter((e) => e.props.messageId === onSecond.messageId).length > seen, 15_000, 'the replayed task published again');
});

test('a lost counter is rebuilt from the orders of all four shards on two servers', async () => {
  for (const [i, u] of users.entries()) for (let n = 0; n < i + 1; n++) await w.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: `more-${u}-${n}` });
  await waitFor(async () => (await ordersOf(SKU)).length === 4 + 10, 20_000, '10 more orders');
  await w.redis.del(stockKey(SKU));
  await w.client.publish(QUEUES.recharge, { userId: users[1]!, sku: SKU, outBusinessNo: 'after-loss' });
  await waitFor(async () => (await ordersOf(SKU)).length === 15, 20_000, 'the order after the rebuild');
  assert.is(await counter(w, SKU), STOCK - 15);
  await waitFor(async () => (await surplus(w, SKU)) === STOCK - 15, 10_000, 'surplus synced');
});

test('the reaper settles orphans of users on both servers', async () => {
  const old = Number((await w.redis.time())[0]) - 120;
  for (const u of users) {
    await w.redis.decr(stockKey(SKU));
    await w.redis.hset(reservedKey(SKU), reservationField(u, `crashed-${u}`, '999999999999'), old);
  }
  assert.is(await counter(w, SKU), STOCK - 19);
  await reapReservations(w.dbs, w.redis, log); // the worker's own reaper may be first: same end state
  assert.is(await counter(w, SKU), STOCK - 15);
  assert.is(await w.redis.hlen(reservedKey(SKU)), 0);
});

test.run();
