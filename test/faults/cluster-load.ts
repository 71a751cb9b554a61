import pg from 'pg';
import type { Config } from '../../infra/config';
import { QUEUES } from '../../infra/topology';
import type { PartakeInput, RechargeInput, UseInput } from '../support/books';
import type { ClusterWorld } from '../cluster/world';
import { catalog, partakeCall, progress, recharges, send, SKU, useOrder } from './load';
import type { Result } from './scenarios';
import { clusterEnvFactory, clusterListQueues } from './cluster-env';
import { longestGap, type Sample } from './gaps';
import { sleep, World, type Proc } from './world';

export { limitedCommits } from './gaps';

/**
 * The cluster fault suite's world and load: a scenario world inside the cluster world (own vhost,
 * key prefix, databases), two `npm start` trees competing for every queue and job, and mixed
 * load (recharges of an unlimited and a limited SKU, partake + use by funded users) with the fault
 * injected part-way. The traffic gap is read afterwards from the outbox: every effect writes a task
 * row, so the longest pause between tasks' `create_time` around the fault is how long traffic stopped.
 */
export type CCtx = { w: World; cw: ClusterWorld; trees: Proc[] };

const BASE_ENV = { OUTBOX_LEASE_MS: '5000' };

export async function inClusterWorld<T>(cw: ClusterWorld, o: { stock?: number; env?: Record<string, string> }, body: (c: CCtx) => Promise<T>): Promise<T> {
  const w = await World.create({ env: clusterEnvFactory(cw), listQueues: clusterListQueues(cw.layout), extra: { ...BASE_ENV, ...o.env } });
  try {
    // The first tree builds dist/ (prestart) and loads nothing; the second starts once it consumes,
    // so that two builds never write dist/ at once.
    const a = w.spawn();
    await w.loadCatalog(catalog(o.stock ?? 100));
    await w.waitConsumers(a, 120_000, 1);
    const b = w.spawn();
    await w.waitConsumers(b, 120_000, 2);
    return await body({ w, cw, trees: [a, b] });
  } catch (err) {
    if (process.env.FAULTS_KEEP_LOGS) process.stderr.write(`logs kept in ${w.dir}\n`);
    throw err;
  } finally {
    await w.close(!!process.env.FAULTS_KEEP_LOGS);
  }
}

export type MixedLoad = Readonly<{ unlimited: number; limited: number; ratePerSec: number; partakers: number; rounds: number }>;
export type Window = { faultStart: number; faultEnd: number; sendEnd: number; extra: string[]; samples: Sample[]; stopSampling(): void; confirmedAt: number[] };
export type Sent = { recharges: RechargeInput[]; partakes: PartakeInput[]; uses: UseInput[]; expectPartakes: number };

export const describeLoad = (m: MixedLoad) => `2 trees; ${m.unlimited + m.limited} recharges (${m.limited} of a limited SKU) at ${m.ratePerSec}/s + ${m.partakers} users × ${m.rounds} partake+use`;

/**
 * Funds `partakers` users (10 chances each), then sends the recharges at a steady rate while the
 * users partake and use their orders in rounds spread over the same time; `inject` runs once
 * `at` of the recharges are out and returns violations of its own (none: []).
 */
export async function underMixedLoad(c: CCtx, m: MixedLoad, at: number, inject: () => Promise<string[] | void>): Promise<{ sent: Sent; win: Window }> {
  const funding = recharges(m.partakers, { users: m.partakers, sku: SKU.quota10, prefix: 'pk' });
  await send(c.w, funding);
  await c.w.waitIdle(120_000);
  const users = funding.map((r) => r.userId);
  const inputs = [...recharges(m.unlimited, { users: 200 }), ...recharges(m.limited, { users: 150, sku: SKU.limited, prefix: 'lim' })].sort(() => Math.random() - 0.5);
  const sampler = sampleCommits(c.w.config, SKU.limited);
  const p = progress();
  const confirmedAt: number[] = [];
  const loading = send(c.w, inputs, { onProgress: (n) => (confirmedAt.push(Date.now()), p.tick(n)), ratePerSec: m.ratePerSec, concurrency: 40 });
  const spanMs = (inputs.length / m.ratePerSec) * 1000;
  const partaking = partakeRounds(c.w, users, m.rounds, spanMs / m.rounds);
  await p.reached(Math.floor(inputs.length * at));
  const faultStart = Date.now();
  const extra = (await inject()) ?? [];
  const faultEnd = Date.now();
  await loading;
  const sendEnd = Date.now();
  const { partakes, uses } = await partaking;
  return {
    sent: { recharges: [...funding, ...inputs], partakes, uses, expectPartakes: users.length * m.rounds },
    win: { faultStart, faultEnd, sendEnd, extra, samples: sampler.samples, stopSampling: () => sampler.stop(), confirmedAt },
  };
}

/** Each user: partake (retrying after 5 s without a reply), use the order, pause; `rounds` times. A round without an order is recorded and the next one follows. */
async function partakeRounds(w: World, users: string[], rounds: number, pauseMs: number): Promise<{ partakes: PartakeInput[]; uses: UseInput[] }> {
  const out = { partakes: [] as PartakeInput[], uses: [] as UseInput[] };
  await Promise.all(
    users.map(async (u, i) => {
      await sleep((pauseMs * i) / users.length); // spread the users over a round
      for (let r = 0; r < rounds; r++) {
        const t0 = Date.now();
        const call = await partakeCall(w, u, { timeoutMs: 5_000 });
        out.partakes.push(call);
        const id = call.replies.find((x) => x.code === '0000')?.orderId;
        if (id) out.uses.push(await useOrder(w, u, id, 5_000));
        await sleep(Math.max(0, pauseMs - (Date.now() - t0)));
      }
    }),
  );
  return out;
}

/**
 * The books after recovery, plus: every tree still meant to run is alive, and every input queue
 * has a consumer per live tree (the competing instances are all back).
 */
export async function finishCluster(c: CCtx, sent: Sent, win: Window, cost: () => string): Promise<Result> {
  try {
    await c.w.waitIdle(300_000);
  } finally {
    win.stopSampling(); // commits are sampled until idle: a pause that ends in the drain is measured whole
  }
  const recoveryMs = Date.now() - win.faultEnd;
  const books = await c.w.check({ recharges: sent.recharges, partakes: sent.partakes, uses: sent.uses, expectPartakes: sent.expectPartakes }, 15_000);
  books.violations.push(...win.extra);
  const live = c.trees.filter((t) => !t.done);
  for (const t of c.trees) if (t.done && !killedOnPurpose.has(t)) books.violations.push(`${t.name} is not running (${JSON.stringify(t.exit)}): ${c.w.tail(t)}`);
  const consumers = await c.w.consumerCounts();
  for (const q of Object.values(QUEUES)) if ((consumers.get(q) ?? 0) < live.length) books.violations.push(`${q} has ${consumers.get(q) ?? 0} consumer(s) for ${live.length} live tree(s)`);
  return { recoveryMs, books, cost: cost() };
}

/** Trees a scenario killed and does not restart: not a failure of the books. */
export const killedOnPurpose = new WeakSet<Proc>();

/**
 * Commits as they become visible: every 200 ms the number of outbox tasks per shard (every effect
 * writes one), and of recharge.completed tasks of the limited SKU. A shard that does not answer
 * keeps its last count. (`task.create_time` is the transaction's start, not its commit: no use here.)
 */
export type Sampler = { stop(): void; samples: Sample[] };

export function sampleCommits(config: Config, limitedSku: number): Sampler {
  const pools = config.shardUrls.map((url) => {
    const p = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 1_000, query_timeout: 1_000 });
    p.on('error', () => undefined);
    return p;
  });
  const samples: Sampler['samples'] = [];
  let last = { n: pools.map(() => 0), limited: pools.map(() => 0) };
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      const got = await Promise.all(
        pools.map((p, i) =>
          p.query<{ n: string; l: string }>(`SELECT count(*) AS n, count(*) FILTER (WHERE topic = 'recharge.completed' AND message->'data'->>'sku' = $1) AS l FROM task`, [String(limitedSku)]).then(
            (r) => ({ n: Number(r.rows[0]!.n), l: Number(r.rows[0]!.l) }),
            () => ({ n: last.n[i]!, l: last.limited[i]! }),
          ),
        ),
      );
      last = { n: got.map((g) => g.n), limited: got.map((g) => g.l) };
      samples.push({ t, ...last });
      await sleep(Math.max(0, 200 - (Date.now() - t)));
    }
  })();
  return {
    samples,
    stop() {
      running = false;
      void loop.finally(() => Promise.all(pools.map((p) => p.end().catch(() => undefined))));
    },
  };
}

/**
 * The longest pause in commits (all shards, or those 0-based `shards`), in seconds, from the fault
 * until one second before the last publish was confirmed (a fault that outlasts the load, like a
 * rolling restart, must not count the idle tail after it).
 */
export function trafficGapS(win: Window, shards?: readonly number[]): number {
  const lastPublish = win.confirmedAt[win.confirmedAt.length - 1] ?? win.sendEnd;
  return longestGap(win.samples, win.faultStart, lastPublish - 1_000, shards) / 1000;
}

/** The longest pause between broker confirms of the test's own publishes from the fault on, in seconds (is the caller or the pipeline stuck?). */
export function publishGapS(win: Window): number {
  let gap = 0;
  let prev: number | undefined;
  for (const t of win.confirmedAt) {
    if (prev !== undefined && t >= win.faultStart) gap = Math.max(gap, t - prev);
    prev = t;
  }
  return gap / 1000;
}

export const s1 = (ms: number) => (ms / 1000).toFixed(1);
