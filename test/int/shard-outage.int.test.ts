import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { route, splitSuffix } from '../../domain/router';
import pg from 'pg';
import { QUEUES } from '../../infra/topology';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { startProxy, type FaultProxy } from '../support/proxy';
import { npmScript, startWorker, type Running } from '../support/workers';

/**
 * Issue 13 against the real services: shard 2's database behind a fault proxy, a recharge worker
 * in process. While shard 2 refuses connections or goes silent, shard 1's recharges go through;
 * shard 2's wait (held or parked, never charged) and are all applied once it is back; nothing is
 * dead-lettered.
 */
const t = suite<{ env: TestEnv; proxy: FaultProxy; worker: Running; client: TestClient }>('shard outage');
const SKU = 9011;
const ACTIVITY = 100301;

t.before(async (ctx) => {
  ctx.env = await createTestEnv({ extra: { PREFETCH: '8', OUTAGE_HOLD: '1', PARK_MS: '500', DB_STATEMENT_TIMEOUT_MS: '1000', DB_CONNECT_TIMEOUT_MS: '1000' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-shard-outage-'));
  const file = path.join(dir, 'catalog.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      activities: [{ activityId: ACTIVITY, name: 'outage', desc: 'shard outage test', strategyId: 1, beginTime: '2020-01-01T00:00:00Z', endTime: '2099-01-01T00:00:00Z', state: 'open' }],
      counts: [{ activityCountId: 1, totalCount: 1, dayCount: 1, monthCount: 1 }],
      skus: [{ sku: SKU, activityId: ACTIVITY, activityCountId: 1, stockCount: -1, productAmount: '0' }],
      behaviorRebates: [],
    }),
  );
  await npmScript('catalog', ['load', file], ctx.env.env).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
  const shard2 = new URL(ctx.env.config.shardUrls[1]!);
  ctx.proxy = await startProxy({ host: shard2.hostname, port: Number(shard2.port || 5432) });
  const shardUrls = [ctx.env.config.shardUrls[0]!, ctx.proxy.url(ctx.env.config.shardUrls[1]!)];
  ctx.worker = await startWorker('recharge', { ...ctx.env.config, shardUrls, metricsPort: 0 });
  ctx.client = await connectClient(ctx.env.config.amqpUrl);
});

t.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.worker?.stop();
  await ctx.proxy?.close();
  await ctx.env?.cleanup();
});

let seq = 0;
/** `n` user ids the router puts on `shard`. */
function usersOn(env: TestEnv, shard: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const u = `so-${++seq}-${i}`;
    if (route(u, env.config.shardUrls.length, env.config.shardTableCount).shard === shard) out.push(u);
  }
  return out;
}

/** Orders of `users` on `shard`, read straight from the server (past the proxy). */
async function orders(ctx: { env: TestEnv }, shard: number, users: string[]): Promise<number> {
  const c = new pg.Client({ connectionString: ctx.env.config.shardUrls[shard - 1]! });
  await c.connect();
  try {
    let n = 0;
    for (let s = 0; s < ctx.env.config.shardTableCount; s++) {
      n += Number((await c.query(`SELECT count(*)::int AS n FROM raffle_activity_order_${splitSuffix(s)} WHERE user_id = ANY($1)`, [users])).rows[0].n);
    }
    return n;
  } finally {
    await c.end();
  }
}

async function outage(ctx: { env: TestEnv; proxy: FaultProxy; worker: Running; client: TestClient }, fault: 'down' | 'drop', shard1WithinMs: number): Promise<void> {
  const s1 = usersOn(ctx.env, 1, 20);
  const s2 = usersOn(ctx.env, 2, 40);
  ctx.proxy[fault]();
  try {
    // Shard 2's messages first, so that they are in the prefetch window when shard 1's arrive.
    for (const u of s2) await ctx.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: `${u}-1` });
    const t0 = Date.now();
    for (const u of s1) await ctx.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: `${u}-1` });
    await waitFor(async () => (await orders(ctx, 1, s1)) === s1.length, shard1WithinMs, `shard 1's ${s1.length} recharges during shard 2's outage`);
    const took = Date.now() - t0;
    assert.is(await orders(ctx, 2, s2), 0, 'shard 2 was out');
    assert.ok(took < shard1WithinMs, `shard 1 took ${took} ms`);
    if (process.env.AQ_TEST_TIMINGS) process.stdout.write(`shard 1 during shard 2 ${fault}: ${took} ms\n`);
  } finally {
    ctx.proxy.restore();
  }
  await waitFor(async () => (await orders(ctx, 2, s2)) === s2.length, 30_000, `shard 2's ${s2.length} recharges after it came back`);
  assert.is(await orders(ctx, 2, s2), s2.length, 'each once');
  assert.equal(
    (await ctx.client.deadLetters()).map((d) => d.props.messageId),
    [],
    'nothing dead-lettered',
  );
}

t('shard 2 refusing connections: shard 1 goes on at once, shard 2 catches up after, nothing dead-lettered', async (ctx) => {
  await outage(ctx, 'down', 5_000);
});

t('shard 2 silent (bytes dropped, no RST): shard 1 goes on within the stall bound, shard 2 catches up after', async (ctx) => {
  // Detection: the group-commit stall bound (3 s) or the query timeout (1 s + 2 s) and the connect timeout (1 s).
  await outage(ctx, 'drop', 12_000);
});

t.run();
