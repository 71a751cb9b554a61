import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { validateCatalog } from '../../domain/catalog';
import { loadCatalog } from '../../infra/catalog';
import { log } from '../../infra/log';
import { connectRedis, type Redis } from '../../infra/redis';
import { sql } from '../../infra/db';
import { stockKey } from '../../infra/stock';
import { openDatabases, type Databases } from '../../infra/shards';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type EnvOptions, type TestEnv } from '../support/env';
import { startWorker, type Running } from '../support/workers';
import type { WorkerName } from '../../workers/runtime';

/** Test helpers shared by the recharge / stock / behavior integration files (not a test file itself). */

export type World = Readonly<{
  env: TestEnv;
  dbs: Databases;
  redis: Redis;
  client: TestClient;
  workers: Map<WorkerName, Running>;
  /** Passive declares for live queue counts. */
  admin: Channel;
  close(): Promise<void>;
}>;

export async function openWorld(workers: WorkerName[], o: EnvOptions = {}): Promise<World> {
  const env = await createTestEnv(o);
  const dbs = await openDatabases(env.config, { poolSize: 3, name: 'test' });
  // The service's own client: one Redis, or the cluster when the world sets REDIS_CLUSTER_NODES.
  const redis = await connectRedis(env.config, log.child({ worker: 'test' }), 'test');
  const client = await connectClient(env.config.amqpUrl);
  const conn: ChannelModel = await amqplib.connect(env.config.amqpUrl);
  conn.on('error', () => undefined);
  const admin = await conn.createChannel();
  admin.on('error', () => undefined);
  const running = new Map<WorkerName, Running>();
  for (const w of workers) running.set(w, await start(w, env));
  return {
    env,
    dbs,
    redis,
    client,
    workers: running,
    admin,
    async close() {
      for (const w of running.values()) await w.stop().catch(() => undefined);
      await conn.close().catch(() => undefined);
      await client.close();
      redis.disconnect();
      await dbs.close();
      await env.cleanup();
    },
  };
}

async function start(name: WorkerName, env: TestEnv): Promise<Running> {
  const r = await startWorker(name, env.config);
  r.ctx.log.level = env.env.LOG_LEVEL ?? 'warn'; // the root logger read LOG_LEVEL before this world existed
  return r;
}

/** Catalog JSON as in contract §4, validated and loaded (stock warmed). */
export async function load(w: World, catalog: unknown): Promise<void> {
  const v = validateCatalog(catalog);
  if (!v.ok) throw new Error(v.problems.join('; '));
  await loadCatalog(w.dbs, w.redis, v.catalog);
}

export const anActivity = (activityId: number, o: Record<string, unknown> = {}) => ({
  activityId,
  name: `activity ${activityId}`,
  desc: '',
  strategyId: 100006,
  beginTime: '2020-01-01T00:00:00Z',
  endTime: '2099-01-01T00:00:00Z',
  state: 'open',
  ...o,
});
export const COUNTS = { activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 };
export const aSku = (sku: number, activityId: number, stockCount: number) => ({ sku, activityId, activityCountId: 11101, stockCount, productAmount: '0' });

/** Rows of a table family over every shard and split table (`raffle_activity_order`, …). */
export async function rows<T = Record<string, any>>(w: World, family: string, where = 'true', params: unknown[] = []): Promise<T[]> {
  const out: T[] = [];
  for (const { ds } of w.dbs.shards) {
    for (const s of w.dbs.suffixes) out.push(...(await sql<T>(ds, `SELECT * FROM ${family}_${s} WHERE ${where}`, params)).rows);
  }
  return out;
}

/** Outbox rows over every shard, with the envelope parsed. */
export async function tasks(w: World, topic?: string): Promise<Array<{ user_id: string; topic: string; message_id: string; message: any }>> {
  const out: any[] = [];
  for (const { ds } of w.dbs.shards) {
    out.push(...(await sql(ds, `SELECT user_id, topic, message_id, message FROM task WHERE $1::text IS NULL OR topic = $1 ORDER BY id`, [topic ?? null])).rows);
  }
  return out;
}

export async function account(w: World, userId: string, activityId: number): Promise<Record<string, number> | undefined> {
  const { ds } = w.dbs.forUser(userId);
  const { rows: r } = await sql<Record<string, number>>(
    ds,
    `
    SELECT total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus
    FROM raffle_activity_account WHERE user_id = $1 AND activity_id = $2`,
    [userId, activityId],
  );
  return r[0];
}

export async function counter(w: World, sku: number): Promise<number | null> {
  const v = await w.redis.get(stockKey(sku));
  return v === null ? null : Number(v);
}

export async function surplus(w: World, sku: number): Promise<number> {
  const { rows: r } = await sql<{ n: number }>(w.dbs.global, 'SELECT stock_count_surplus AS n FROM raffle_activity_sku WHERE sku = $1', [sku]);
  return Number(r[0]?.n);
}

/**
 * Waits until every message of `queue` has been handled: nothing left to deliver, then each worker
 * is stopped (which waits for its in-flight handlers) and started again.
 */
export async function drained(w: World, queue: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await w.admin.checkQueue(queue)).messageCount === 0, timeoutMs, `${queue} delivered`);
  for (const [name, r] of w.workers) {
    await r.stop();
    w.workers.set(name, await start(name, w.env));
  }
}

export { waitFor };
