import { spawn } from 'node:child_process';
import path from 'node:path';
import amqplib from 'amqplib';
import { sql } from '../infra/db';
import { openDatabases } from '../infra/shards';
import { QUEUES } from '../infra/topology';
import { connectClient } from '../test/support/client';
import { createTestEnv } from '../test/support/env';
import { waitConsumers } from '../test/support/workers';

/**
 * Partake over request/reply: CYCLES partake + raffle-order.used cycles by CALLERS concurrent
 * callers over USERS users (one caller per user at a time), against a spawned partake worker in
 * an isolated test world. `npx tsx bench/partake-rpc.ts [CYCLES] [CALLERS] [USERS]`
 */
const [cycles, callers, users] = [Number(process.argv[2] ?? 2000), Number(process.argv[3] ?? 16), Number(process.argv[4] ?? 400)];
const ACTIVITY = 100301;
const root = path.resolve(import.meta.dirname, '..');

const env = await createTestEnv();
const dbs = await openDatabases(env.config, { poolSize: 4, name: 'bench' });
const worker = spawn(process.execPath, ['--import', 'tsx', 'workers/run.ts', 'partake'], { cwd: root, env: { ...process.env, ...env.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'ignore'] });
process.on('exit', () => worker.kill('SIGTERM'));
try {
  await sql(dbs.global, `INSERT INTO raffle_activity (activity_id, activity_name, begin_date_time, end_date_time, strategy_id, state)
    VALUES ($1, 'bench', '2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z', 1, 'open')`, [ACTIVITY]);
  const ids = Array.from({ length: users }, (_, i) => `bench-user-${i}`);
  for (const userId of ids) {
    await sql(dbs.forUser(userId).ds, `INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
      VALUES ($1, $2, 100000, 100000, 100000, 100000, 100000, 100000)`, [userId, ACTIVITY]);
  }
  const admin = await amqplib.connect(env.config.amqpUrl);
  admin.on('error', () => undefined);
  // A fresh channel per check: a 404 (queue not declared yet) closes the channel it happened on.
  await waitConsumers(async (q) => {
    const ch = await admin.createChannel();
    ch.on('error', () => undefined);
    try {
      return await ch.checkQueue(q);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }, [QUEUES.partake, QUEUES.raffleOrderUsed]);
  await admin.close();

  const client = await connectClient(env.config.amqpUrl);
  // Warm-up: connections, caches, JIT.
  for (const userId of ids.slice(0, 20)) {
    const r = await client.rpc(QUEUES.partake, { userId, activityId: ACTIVITY });
    await client.rpc(QUEUES.raffleOrderUsed, { userId, orderId: r.body.data.orderId });
  }
  const partakeMs: number[] = [];
  const useMs: number[] = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: callers }, async (_, c) => {
    for (let k = 0; ; k++) {
      if (next >= cycles) return;
      next++;
      const userId = ids[(c + k * callers) % users]!; // callers never share a user at the same time when users % callers == 0
      let t = performance.now();
      const r = await client.rpc(QUEUES.partake, { userId, activityId: ACTIVITY }, { timeoutMs: 30_000 });
      partakeMs.push(performance.now() - t);
      if (r.body.code !== '0000') { failures++; continue; }
      t = performance.now();
      const u = await client.rpc(QUEUES.raffleOrderUsed, { userId, orderId: r.body.data.orderId }, { timeoutMs: 30_000 });
      useMs.push(performance.now() - t);
      if (u.body.code !== '0000') failures++;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  const q = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(1);
  process.stdout.write(`${JSON.stringify({
    cycles, callers, users, failures, seconds: Number(seconds.toFixed(2)),
    partakesPerSecond: Number((partakeMs.length / seconds).toFixed(0)),
    partakeP50ms: q(partakeMs, 0.5), partakeP99ms: q(partakeMs, 0.99),
    useP50ms: q(useMs, 0.5), useP99ms: q(useMs, 0.99),
  }, null, 2)}\n`);
} finally {
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  await dbs.close();
  await env.cleanup();
}
process.exit(0);
