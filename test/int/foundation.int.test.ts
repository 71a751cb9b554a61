import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { migrate } from '../../infra/migrate';
import { openDatabases, type Databases } from '../../infra/shards';
import { begin, sql } from '../../infra/db';
import { stockKey } from '../../infra/stock';
import { INPUT_QUEUES } from '../../infra/topology';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedAccount } from '../support/seed';
import { spawnNpm, waitConsumers } from '../support/workers';
import { waitFor } from '../support/client';

const t = suite<{ world: TestEnv; dbs: Databases; redis: Redis; dir: string }>('foundation');

t.before(async (ctx) => {
  ctx.world = await createTestEnv();
  ctx.dbs = await openDatabases(ctx.world.config, { poolSize: 2, name: 'test' });
  ctx.redis = new Redis(ctx.world.config.redisUrl);
  ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-foundation-'));
});

t.after(async (ctx) => {
  ctx.redis.disconnect();
  await ctx.dbs.close();
  await ctx.world.cleanup();
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

t('migrate a second time changes nothing; every shard has every table', async ({ world, dbs }) => {
  const again = await migrate(world.config);
  assert.equal(again, { created: [], applied: [] });
  for (const { ds, shard } of dbs.shards) {
    const { rows } = await sql<{ name: string }>(ds, `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`);
    const names = new Set(rows.map((r) => r.name));
    for (const base of ['raffle_activity_account', 'raffle_activity_account_day', 'raffle_activity_account_month', 'task']) assert.ok(names.has(base), `shard ${shard} lacks ${base}`);
    for (const s of ['000', '001', '002', '003']) {
      for (const p of ['raffle_activity_order', 'user_raffle_order', 'user_behavior_rebate_order']) assert.ok(names.has(`${p}_${s}`), `shard ${shard} lacks ${p}_${s}`);
    }
    assert.not.ok(names.has('raffle_activity_order_004'));
  }
  const { rows } = await sql<{ name: string }>(dbs.global, `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`);
  for (const g of ['raffle_activity', 'raffle_activity_count', 'raffle_activity_sku', 'daily_behavior_rebate'])
    assert.ok(
      rows.some((r) => r.name === g),
      `global lacks ${g}`,
    );
});

t('the schema refuses a negative surplus', async ({ dbs }) => {
  try {
    await seedAccount(dbs, 'neg', 1, { total: 1, totalSurplus: -1, day: 1, month: 1 });
    assert.unreachable('a negative surplus was stored');
  } catch (err) {
    assert.is((err as { code?: string }).code, '23514'); // check_violation
  }
});

t('a pooled connection plans a prepared statement once, whatever its parameters (a generic plan)', async ({ dbs }) => {
  const text = 'SELECT count(*)::int AS n FROM unnest($1::text[]) AS u(user_id) JOIN raffle_activity_account a USING (user_id)';
  for (const ds of [dbs.global, ...dbs.shards.map((s) => s.ds)]) {
    assert.equal((await sql<{ plan_cache_mode: string }>(ds, 'SHOW plan_cache_mode')).rows[0]!.plan_cache_mode, 'force_generic_plan');
  }
  const tx = await begin(dbs.shards[0]!.ds);
  try {
    for (let n = 1; n <= 8; n++) await sql(tx, text, [Array.from({ length: n }, (_, k) => `plan-${k}`)]);
    const { rows } = await sql<{ generic_plans: string; custom_plans: string }>(tx, 'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1', [text]);
    assert.equal(
      rows.map((r) => [Number(r.generic_plans), Number(r.custom_plans)]),
      [[8, 0]],
      'eight executions, no plan made for their values',
    );
  } finally {
    await tx.rollback();
  }
});

const catalog = (stockCount: number) => ({
  activities: [{ activityId: 100301, name: 'Spring raffle', desc: 'x', strategyId: 100006, beginTime: '2020-01-01T00:00:00Z', endTime: '2099-01-01T00:00:00Z', state: 'open' }],
  counts: [{ activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 }],
  skus: [
    { sku: 9011, activityId: 100301, activityCountId: 11101, stockCount, productAmount: '0' },
    { sku: 9019, activityId: 100301, activityCountId: 11101, stockCount: -1, productAmount: '1.50' },
  ],
  behaviorRebates: [{ behavior: 'sign', sku: 9011, desc: 'daily sign-in', state: 'open' }],
});

async function loadFile(world: TestEnv, dir: string, name: string, body: unknown) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  const p = spawnNpm(['run', '--silent', 'catalog', '--', 'load', file], world.env);
  return { ...(await p.exited), out: p.output() };
}

t('an invalid catalog is refused whole with every problem named', async ({ world, dbs, dir }) => {
  const bad: any = catalog(100);
  bad.skus[0].stockCount = -5;
  bad.activities[0].state = 'running';
  const r = await loadFile(world, dir, 'bad.json', bad);
  assert.is(r.code, 1, r.out);
  assert.ok(r.out.includes('skus[0].stockCount'), r.out);
  assert.ok(r.out.includes('activities[0].state'), r.out);
  const { rows } = await sql(dbs.global, 'SELECT * FROM raffle_activity');
  assert.is(rows.length, 0, 'nothing may be stored from a refused file');
  const notJson = await loadFile(world, dir, 'nojson.json', '{"activities": [');
  assert.is(notJson.code, 1);
  assert.ok(notJson.out.includes('cannot read'), notJson.out);
});

t('catalog load warms stock; a larger stockCount adds the difference to the live stock', async ({ world, dbs, redis, dir }) => {
  let r = await loadFile(world, dir, 'c1.json', catalog(100));
  assert.is(r.code, 0, r.out);
  assert.is(await redis.get(stockKey(9011)), '100');
  assert.is(await redis.get(stockKey(9019)), null, 'unlimited stock has no counter');
  await redis.set(stockKey(9011), '40'); // 60 units sold meanwhile
  r = await loadFile(world, dir, 'c2.json', catalog(150));
  assert.is(r.code, 0, r.out);
  assert.is(await redis.get(stockKey(9011)), '90');
  const { rows } = await sql<{ stock_count: number; stock_count_surplus: number }>(dbs.global, 'SELECT stock_count, stock_count_surplus FROM raffle_activity_sku WHERE sku = 9011');
  assert.equal(rows[0], { stock_count: 150, stock_count_surplus: 150 });
  r = await loadFile(world, dir, 'c3.json', catalog(150)); // idempotent
  assert.is(await redis.get(stockKey(9011)), '90');
});

t('npm start runs every worker, restarts a killed one, and exits 0 on SIGTERM', async ({ world }) => {
  const conn = await amqplib.connect(world.config.amqpUrl);
  conn.on('error', () => undefined);
  const checkQueue = async (q: string) => {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      return await ch.checkQueue(q);
    } finally {
      await ch.close().catch(() => undefined);
    }
  };
  const svc = spawnNpm(['start'], world.env);
  try {
    await waitConsumers(checkQueue, INPUT_QUEUES, 40_000);
    // The supervisor's children: kill one worker and watch it come back.
    const children = fs.readFileSync(`/proc/${svc.child.pid}/task/${svc.child.pid}/children`, 'utf8').trim();
    assert.ok(children, 'npm start has no child process');
    const workerPids = workerProcesses();
    assert.ok(workerPids.length >= 4, `expected 4 worker processes, found ${workerPids.length}`);
    process.kill(workerPids[0]!, 'SIGKILL');
    await waitFor(() => !workerProcesses().includes(workerPids[0]!), 5_000, 'the killed worker to go');
    await waitFor(() => workerProcesses().length >= 4, 20_000, 'the killed worker to be restarted');
    await waitConsumers(checkQueue, INPUT_QUEUES, 30_000);
    const t0 = Date.now();
    process.kill(svc.child.pid!, 'SIGTERM');
    const res = await Promise.race([svc.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('still running 10 s after SIGTERM')), 10_000))]);
    assert.equal(res, { code: 0, signal: null }, svc.output().slice(-2000));
    assert.ok(Date.now() - t0 < 10_000);
    await waitFor(() => workerProcesses().length === 0, 3_000, 'worker processes to be gone');
  } finally {
    try {
      process.kill(-svc.child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await conn.close().catch(() => undefined);
  }

  /** Worker processes of this test world (matched by its vhost in their environment). */
  function workerProcesses(): number[] {
    const out: number[] = [];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
        if (!/workers\/run\.ts|dist\/run\.mjs/.test(cmd)) continue;
        if (fs.readFileSync(`/proc/${d}/environ`, 'utf8').includes(world.config.amqpUrl)) out.push(Number(d));
      } catch {
        /* gone */
      }
    }
    return out;
  }
});

t('a wrong setting stops npm start with one line naming the variable', async ({ world }) => {
  const svc = spawnNpm(['start'], { ...world.env, SHARD_TABLE_COUNT: '3' });
  const res = await svc.exited;
  assert.is(res.code, 2);
  assert.match(svc.output(), /configuration error: SHARD_TABLE_COUNT: /);
});

t.run();
