import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import { declareInputQueue, QUEUES } from '../../infra/topology';
import type { RechargeInput } from '../support/books';
import { startProxy } from '../support/proxy';
import { failuresFelt, type Scenario } from './harness';
import { SKU } from './load';
import { baselineThenFault, finish, fund, inWorld, orderTimes, seconds, runTag, startLoad, usersOn, type Load, type Part } from './partial-load';
import { sleep } from './world';

/**
 * Issue 13, "partial failures stay partial": one shard database, Redis, or one worker's broker path
 * out while the rest runs. Each scenario runs a baseline (no fault) and the fault in the same world
 * and under the same paced load, and reports the healthy part's throughput and p99 in both
 * (`Result.healthy`, the generated table of docs/RELIABILITY.md). Harness: partial-load.ts.
 */
const exec = promisify(execFile);

/** Shard 2's database out (refused, or a silent path) under mixed load over both shards; shard 1 must keep its throughput. */
function shardOutage(mode: 'refuse' | 'silent'): Scenario {
  const faultMs = seconds('FAULTS_SHARD_OUTAGE_SECONDS', 90, 30);
  const baselineMs = seconds('FAULTS_BASELINE_SECONDS', 30, 20);
  return {
    name: `shard-${mode}`,
    // Quick run (30 s outage): 103 s measured.
    quick: mode === 'refuse',
    load: 'per shard: 40 recharges/s over 100 users + 4 partake+use callers (≤ 4 rounds/s each); baseline first',
    fault: `shard 2's database ${mode === 'refuse' ? 'refuses connections (proxy cuts and refuses)' : 'silent (proxy drops every byte, no RST)'} for ${faultMs / 1000} s (quick run: 30 s)`,
    run: () =>
      inWorld({ shardProxy: 2 }, async (c, proxy) => {
        const f1 = await fund(c, 1, 4, 60, 'pk1');
        const f2 = await fund(c, 2, 4, 60, 'pk2');
        const parts: Part[] = [1, 2].map((s) => ({ name: `shard ${s}`, rechargeUsers: usersOn(c.w, s, 100, `rc${s}`), sku: SKU.unlimited, ratePerSec: 40, callers: (s === 1 ? f1 : f2).groups }));
        return baselineThenFault(c, parts, ['shard 1'], { baselineMs, faultMs, funding: [...f1.funding, ...f2.funding], failing: 'shard 2' }, async () => {
          if (mode === 'refuse') proxy!.down();
          else proxy!.drop();
          return () => proxy!.restore();
        });
      }),
  };
}

const redisSilent: Scenario = {
  name: 'redis-silent',
  quick: false,
  load: '30 unlimited recharges/s, 20 limited recharges/s (stock 5000), 4 partake+use callers; baseline first',
  fault: `Redis silent (proxy drops every byte, no RST) for ${seconds('FAULTS_REDIS_OUTAGE_SECONDS', 60, 60) / 1000} s`,
  run: () =>
    inWorld({ proxy: 'redis', stock: 5_000 }, async (c, proxy) => {
      const f = await fund(c, 1, 2, 60, 'rpa');
      const g = await fund(c, 2, 2, 60, 'rpb');
      const parts: Part[] = [
        {
          name: 'unlimited',
          rechargeUsers: usersOn(c.w, undefined, 100, 'ru'),
          sku: SKU.unlimited,
          ratePerSec: 30,
          callers: [...f.groups, ...g.groups],
          labels: { recharges: 'unlimited-stock recharges', partakes: 'partakes' },
        },
        { name: 'limited', rechargeUsers: usersOn(c.w, undefined, 100, 'rl'), sku: SKU.limited, ratePerSec: 20, labels: { recharges: 'limited-stock recharges', partakes: '-' } },
      ];
      const r = await baselineThenFault(
        c,
        parts,
        ['unlimited'],
        { baselineMs: seconds('FAULTS_BASELINE_SECONDS', 30, 20), faultMs: seconds('FAULTS_REDIS_OUTAGE_SECONDS', 60, 60), funding: [...f.funding, ...g.funding], failing: 'limited' },
        async () => {
          proxy!.drop();
          return () => proxy!.restore();
        },
      );
      return r;
    }),
};

const amqpSilentOneWorker: Scenario = {
  name: 'amqp-silent-one-worker',
  quick: false,
  load: '60 recharges/s over both shards; a second recharge worker next to npm start, its broker path through a proxy',
  fault: `the second worker's RabbitMQ path silent (proxy drops every byte, no RST) for ${seconds('FAULTS_AMQP_OUTAGE_SECONDS', 60, 60) / 1000} s`,
  run: () =>
    inWorld({}, async (c) => {
      const proxy = await startProxy({ host: '127.0.0.1', port: Number(new URL(c.w.config.amqpUrl).port || 5672) });
      try {
        const before = (await c.w.consumerCounts()).get(QUEUES.recharge) ?? 0;
        const second = c.w.spawn({ worker: 'recharge', extra: { AMQP_URL: proxy.url(c.w.config.amqpUrl), METRICS_PORT: '0' } });
        const deadline = Date.now() + 60_000;
        while (((await c.w.consumerCounts()).get(QUEUES.recharge) ?? 0) <= before && Date.now() < deadline) await sleep(300);
        const parts: Part[] = [
          {
            name: 'recharges',
            rechargeUsers: usersOn(c.w, undefined, 200, 'am'),
            sku: SKU.unlimited,
            ratePerSec: 60,
            labels: { recharges: "recharges (both workers, then npm start's alone)", partakes: '-' },
          },
        ];
        const r = await baselineThenFault(
          c,
          parts,
          ['recharges'],
          { baselineMs: seconds('FAULTS_BASELINE_SECONDS', 30, 20), faultMs: seconds('FAULTS_AMQP_OUTAGE_SECONDS', 60, 60), funding: [] },
          async () => {
            proxy.drop();
            return () => proxy.restore();
          },
        );
        const lost = fs
          .readFileSync(second.log, 'utf8')
          .split('\n')
          .filter((l) => /broker disconnected|Heartbeat timeout/.test(l)).length;
        if (!lost) r.books.violations.push('[fault-not-shown] the second worker never lost its broker connection (no "broker disconnected" in its log)');
        r.evidence = `the second worker logged ${lost} broker disconnect(s)`;
        if (second.done) r.books.violations.push(`the second worker exited during the silent path (${JSON.stringify(second.exit)}): ${c.w.tail(second)}`);
        const back = Date.now() + 30_000;
        let consumers = 0;
        while (Date.now() < back && (consumers = (await c.w.consumerCounts()).get(QUEUES.recharge) ?? 0) < 2) await sleep(500);
        if (consumers < 2) r.books.violations.push(`the second worker did not consume again within 30 s of the path's return (${consumers} consumer(s))`);
        return r;
      } finally {
        await proxy.close();
      }
    }),
};

/**
 * There is no exit after a long outage any more; what made the old one harmful was the deliveries it
 * charged. Compressed: DELIVERY_LIMIT=3 and PARK_MS=1000, so over the outage every waiting message
 * goes round the park queue about a hundred times, thirty times its delivery limit.
 */
const longOutage: Scenario = {
  name: 'long-outage',
  quick: false,
  load: '30 recharges/s over both shards; DELIVERY_LIMIT=3, PARK_MS=1000',
  fault: `every PostgreSQL database (global and both shards) refused for ${seconds('FAULTS_LONG_OUTAGE_SECONDS', 100, 100) / 1000} s`,
  run: () =>
    inWorld({ env: { DELIVERY_LIMIT: '3', PARK_MS: '1000' }, proxy: 'pg' }, async (c, proxy) => {
      const parts: Part[] = [{ name: 'recharges', rechargeUsers: usersOn(c.w, undefined, 100, 'lo'), sku: SKU.unlimited, ratePerSec: 30 }];
      const outageMs = seconds('FAULTS_LONG_OUTAGE_SECONDS', 100, 100);
      const load = startLoad(c.w, parts);
      await sleep(5_000);
      proxy!.down();
      await sleep(outageMs);
      proxy!.restore();
      const faultEnd = Date.now();
      await sleep(5_000);
      await load.stop();
      return failuresFelt(c, await finish(c, faultEnd, load), `every database refused ${outageMs / 1000} s`);
    }),
};

/** The recharge queue deleted and declared again (as an operator would) while its worker runs: consumed again within 10 s. */
const queueRedeclared: Scenario = {
  name: 'queue-redeclared',
  quick: false,
  load: '300 recharges before, 20 probes right after the new queue, 300 after',
  fault: 'activity.recharge deleted (rabbitmqctl delete_queue) and declared again while the workers run',
  run: () =>
    inWorld({}, async (c) => {
      const inputs: RechargeInput[] = [];
      const publish = async (prefix: string, n: number) => {
        const batch = usersOn(c.w, undefined, n, prefix).map((u, i) => ({ userId: u, outBusinessNo: `${prefix}-${runTag}-${i}`, sku: SKU.unlimited }));
        inputs.push(...batch);
        await Promise.all(batch.map((r) => c.w.caller.publish(QUEUES.recharge, { userId: r.userId, sku: r.sku, outBusinessNo: r.outBusinessNo }, { messageId: `m-${r.userId}-${r.outBusinessNo}` })));
        return batch;
      };
      await publish('qa', 300);
      await c.w.waitIdle();
      await exec('rabbitmqctl', ['-q', 'delete_queue', '-p', c.w.vhost, QUEUES.recharge], { timeout: 30_000 });
      const conn = await amqplib.connect(c.w.config.amqpUrl);
      try {
        const ch = await conn.createChannel();
        await declareInputQueue(ch, QUEUES.recharge, c.w.config);
        await ch.close();
      } finally {
        await conn.close().catch(() => undefined);
      }
      const t0 = Date.now();
      const probes = await publish('qp', 20);
      const extra: string[] = [];
      let consumedMs = NaN;
      while (Date.now() - t0 < 30_000) {
        const times = await orderTimes(c.w);
        if (probes.some((p) => times.has(`${p.userId}/${p.outBusinessNo}`))) {
          consumedMs = Date.now() - t0;
          break;
        }
        await sleep(250);
      }
      if (!(consumedMs <= 10_000)) extra.push(`the new queue was not consumed within 10 s (${Number.isNaN(consumedMs) ? 'not within 30 s' : `${consumedMs} ms`})`);
      await publish('qb', 300);
      const load: Load = { sent: inputs.map((input) => ({ input, part: 'recharge', at: 0 })), rounds: [], stop: async () => undefined };
      const r = await finish(c, t0, load, { extra });
      r.evidence = `queue deleted and declared again; first order on it after ${consumedMs} ms`;
      r.healthy = [
        { part: 'first probe order after the re-declare', baselinePerSec: NaN, faultPerSec: NaN, ratio: NaN, baselineP99Ms: NaN, faultP99Ms: consumedMs, goal: '≤ 10 s', ok: consumedMs <= 10_000 },
      ];
      return r;
    }),
};

export const PARTIAL_SCENARIOS: Scenario[] = [shardOutage('refuse'), shardOutage('silent'), redisSilent, amqpSilentOneWorker, longOutage, queueRedeclared];
