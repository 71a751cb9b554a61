import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import pg from 'pg';
import { route, splitSuffix } from '../../domain/router';
import { declareInputQueue, INPUT_QUEUES, QUEUES } from '../../infra/topology';
import type { Books, PartakeInput, RechargeInput, UseInput } from '../support/books';
import { startProxy, type FaultProxy } from '../support/proxy';
import { ACTIVITY, SKU, catalog } from './load';
import { BASE_ENV, failuresFelt, finish as finishBooks, type Ctx, type HealthyRow, type Result, type Scenario } from './harness';
import { sleep, World, type ProxiedService, type Reply } from './world';

/**
 * Issue 13, "partial failures stay partial": one shard database, Redis, or one worker's broker path
 * out while the rest runs. Each scenario runs a baseline (no fault) and the fault in the same world
 * and under the same paced load, and reports the healthy part's throughput and p99 in both
 * (`Result.healthy`, printed by run.ts as the second table).
 */
const exec = promisify(execFile);
const quickRun = process.argv.includes('--quick');
const seconds = (name: string, full: number, quick: number) => Number(process.env[name] ?? (quickRun ? quick : full)) * 1000;
/** The healthy part must keep at least this share of its baseline throughput. */
const GOAL = 0.7;
const runTag = Math.random().toString(36).slice(2, 6);

/** A world with `npm start`; `shardProxy` puts a fault proxy in front of that shard database only. */
async function inWorld<T>(o: { env?: Record<string, string>; shardProxy?: number; proxy?: ProxiedService; stock?: number }, body: (c: Ctx, proxy?: FaultProxy) => Promise<T>): Promise<T> {
  const w = await World.create({ proxies: o.proxy ? [o.proxy] : [], extra: { ...BASE_ENV, ...o.env } });
  let proxy: FaultProxy | undefined;
  try {
    if (o.shardProxy) {
      const urls = [...w.config.shardUrls];
      const target = new URL(urls[o.shardProxy - 1]!);
      proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
      urls[o.shardProxy - 1] = proxy.url(urls[o.shardProxy - 1]!);
      w.serviceEnv.SHARD_DATABASE_URLS = urls.join(',');
    }
    if (o.proxy) proxy = w.proxies[o.proxy];
    const starting = w.start();
    starting.catch(() => undefined);
    await w.loadCatalog(catalog(o.stock ?? 100));
    const svc = await starting;
    return await body({ w, svc }, proxy);
  } catch (err) {
    if (process.env.FAULTS_KEEP_LOGS) process.stderr.write(`logs kept in ${w.dir}\n`);
    throw err;
  } finally {
    await w.close(!!process.env.FAULTS_KEEP_LOGS);
    if (o.shardProxy) await proxy?.close();
  }
}

/** `n` user ids that the router puts on `shard`. */
function usersOn(w: World, shard: number | undefined, n: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const u = `${prefix}-${runTag}-${i}`;
    if (shard === undefined || route(u, w.config.shardUrls.length, w.config.shardTableCount).shard === shard) out.push(u);
  }
  return out;
}

type Sent = { input: RechargeInput; part: string; at: number };
type Round = { part: string; start: number; end: number; call: PartakeInput; use?: UseInput };

/** The load both phases share: paced recharges per part, and partake + use rounds by callers per part. */
type Load = { sent: Sent[]; rounds: Round[]; stop(): Promise<void> };

type Part = Readonly<{ name: string; rechargeUsers: string[]; sku: number; ratePerSec: number; callers?: string[][] }>;

/** Starts the load: each part's recharges at its rate (open loop), each partake caller in a closed loop (one round per 250 ms at most). */
function startLoad(w: World, parts: readonly Part[]): Load {
  const sent: Sent[] = [];
  const rounds: Round[] = [];
  let running = true;
  let seq = 0;
  const tasks: Promise<void>[] = [];
  for (const p of parts) {
    tasks.push(
      (async () => {
        const t0 = Date.now();
        const inFlight = new Set<Promise<unknown>>();
        for (let i = 0; running; i++) {
          const due = t0 + (i * 1000) / p.ratePerSec;
          if (due > Date.now()) await sleep(due - Date.now());
          if (!running) break;
          const input = { userId: p.rechargeUsers[i % p.rechargeUsers.length]!, outBusinessNo: `${p.name}-${runTag}-${++seq}`, sku: p.sku };
          const s: Sent = { input, part: p.name, at: Date.now() };
          sent.push(s);
          const f = w.caller.publish(QUEUES.recharge, { userId: input.userId, sku: input.sku, outBusinessNo: input.outBusinessNo }, { messageId: `m-${input.userId}-${input.outBusinessNo}` });
          inFlight.add(f);
          void f.finally(() => inFlight.delete(f)).catch(() => undefined);
          if (inFlight.size > 200) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      })(),
    );
    for (const users of p.callers ?? []) {
      tasks.push(
        (async () => {
          for (let i = 0; running; i++) {
            const start = Date.now();
            const userId = users[i % users.length]!;
            const r = await rpc(w, QUEUES.partake, { userId, activityId: ACTIVITY });
            const end = Date.now();
            const call: PartakeInput = { userId, activityId: ACTIVITY, replies: r ? [{ code: r.code, orderId: r.data?.orderId !== undefined ? String(r.data.orderId) : undefined }] : [], sentAt: start, okAt: r?.code === '0000' ? end : undefined };
            const round: Round = { part: p.name, start, end, call };
            rounds.push(round);
            const orderId = call.replies[0]?.code === '0000' ? call.replies[0].orderId : undefined;
            if (orderId) {
              const u = await rpc(w, QUEUES.raffleOrderUsed, { userId, orderId });
              round.use = { userId, orderId, replies: u ? [{ code: u.code }] : [], attempts: 1 };
            }
            const rest = start + 250 - Date.now();
            if (rest > 0) await sleep(rest);
          }
        })(),
      );
    }
  }
  return {
    sent,
    rounds,
    async stop() {
      running = false;
      await Promise.all(tasks);
    },
  };
}

/** One request/reply attempt with a timeout longer than any outage here: a partake is never sent twice (a late retry would make a second order). */
const rpc = (w: World, queue: string, payload: unknown): Promise<Reply | undefined> => w.caller.rpc(queue, payload, 300_000).catch(() => undefined);

/** Order time of every recharge order of the test's users, by `userId/outBusinessNo`. */
async function orderTimes(w: World): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const url of w.config.shardUrls) {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    await c.connect();
    try {
      for (let t = 0; t < w.config.shardTableCount; t++) {
        const r = await c.query(`SELECT user_id, out_business_no, (extract(epoch FROM order_time) * 1000)::float8 AS t FROM raffle_activity_order_${splitSuffix(t)}`);
        for (const row of r.rows) out.set(`${row.user_id}/${row.out_business_no}`, Number(row.t));
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return out;
}

const p99 = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
};

type Window = Readonly<{ from: number; to: number }>;

/** Throughput (completions inside the window per second) and p99 latency (of work started inside it), per healthy part. */
async function figures(w: World, load: Load, which: { healthy: readonly string[]; failing?: string }, base: Window, fault: Window, books: Books): Promise<HealthyRow[]> {
  const times = await orderTimes(w);
  const rows: HealthyRow[] = [];
  const within = (t: number, win: Window) => t >= win.from && t < win.to;
  const perSec = (n: number, win: Window) => n / ((win.to - win.from) / 1000);
  for (const part of [...which.healthy, ...(which.failing ? [which.failing] : [])]) {
    const failing = part === which.failing;
    const rech = load.sent.filter((s) => s.part === part).map((s) => ({ at: s.at, done: times.get(`${s.input.userId}/${s.input.outBusinessNo}`) }));
    const rounds = load.rounds.filter((r) => r.part === part && r.call.replies[0]?.code === '0000');
    const kinds: Array<[string, Array<{ at: number; done?: number }>]> = [
      [`${part} recharges`, rech],
      [`${part} partakes`, rounds.map((r) => ({ at: r.start, done: r.end }))],
    ];
    for (const [name, xs] of kinds) {
      if (!xs.length) continue;
      const measure = (win: Window) => ({
        tput: perSec(xs.filter((x) => x.done !== undefined && within(x.done, win)).length, win),
        p99: p99(xs.filter((x) => within(x.at, win) && x.done !== undefined).map((x) => x.done! - x.at)),
      });
      const b = measure(base);
      const f = measure(fault);
      const ratio = b.tput ? f.tput / b.tput : 0;
      // The failing part shows that the fault happened: it must lose most of its throughput.
      const ok = failing ? ratio < 0.5 : ratio >= GOAL;
      rows.push({ part: `${name}${failing ? ' (the failing part)' : ''}`, baselinePerSec: b.tput, faultPerSec: f.tput, ratio, baselineP99Ms: b.p99, faultP99Ms: f.p99, goal: failing ? '< 50 % (the fault happened)' : `≥ ${GOAL * 100} % of baseline`, ok });
      if (!ok && failing) books.violations.push(`the fault did not happen: ${name} kept ${(ratio * 100).toFixed(0)} % of its baseline`);
      if (!ok && !failing) books.violations.push(`${name}: ${f.tput.toFixed(1)}/s during the fault, ${(ratio * 100).toFixed(0)} % of its baseline ${b.tput.toFixed(1)}/s (goal ≥ ${GOAL * 100} %)`);
    }
  }
  return rows;
}

/** After the load: idle, the strict books (every partake planned to succeed), no worker restart. */
async function finish(c: Ctx, faultEnd: number, load: Load, o: { extra?: string[]; funding?: RechargeInput[] } = {}): Promise<Result> {
  const r = await finishBooks(c, faultEnd, {
    recharges: [...(o.funding ?? []), ...load.sent.map((s) => s.input)],
    partakes: load.rounds.map((x) => x.call),
    uses: load.rounds.flatMap((x) => (x.use ? [x.use] : [])),
    expectPartakes: load.rounds.length,
  }, o.extra);
  const restarts = c.w.grepLogs(/worker exited, restarting/);
  if (restarts.length) r.books.violations.push(`${restarts.length} worker restart(s) during the run: ${restarts[0]!.slice(0, 300)}`);
  return r;
}

/** Funds partake callers: each of `callers` × `usersPer` users gets 10 chances (SKU quota10). */
async function fund(c: Ctx, shard: number, callers: number, usersPer: number, prefix: string): Promise<{ groups: string[][]; funding: RechargeInput[] }> {
  const users = usersOn(c.w, shard, callers * usersPer, prefix);
  const funding = users.map((u, i) => ({ userId: u, outBusinessNo: `${prefix}-fund-${runTag}-${i}`, sku: SKU.quota10 }));
  await Promise.all(funding.map((r) => c.w.caller.publish(QUEUES.recharge, { userId: r.userId, sku: r.sku, outBusinessNo: r.outBusinessNo }, { messageId: `m-${r.userId}-${r.outBusinessNo}` })));
  const groups = Array.from({ length: callers }, (_, k) => users.slice(k * usersPer, (k + 1) * usersPer));
  return { groups, funding };
}

/**
 * Baseline, fault, a short tail after it, then the books and the healthy parts' figures. `inject`
 * starts the fault and returns the function that ends it.
 */
async function baselineThenFault(c: Ctx, parts: Part[], healthy: string[], o: { baselineMs: number; faultMs: number; funding: RechargeInput[]; failing?: string }, inject: () => Promise<() => Promise<void> | void>): Promise<Result> {
  await c.w.waitIdle();
  const load = startLoad(c.w, parts);
  const warm = Date.now();
  await sleep(o.baselineMs);
  const base = { from: warm + 3_000, to: Date.now() };
  const end = await inject();
  const faultFrom = Date.now();
  await sleep(o.faultMs);
  await end();
  const fault = { from: faultFrom, to: Date.now() };
  await sleep(10_000);
  await load.stop();
  const r = await finish(c, fault.to, load, { funding: o.funding });
  r.healthy = await figures(c.w, load, { healthy, failing: o.failing }, base, fault, r.books);
  const down = r.healthy.filter((h) => h.part.includes('failing part')).map((h) => `${h.part.replace(' (the failing part)', '')} ${(h.ratio * 100).toFixed(0)} % of baseline`);
  // npm start's workers felt it (the second worker of amqp-silent-one-worker shows it in its own log instead).
  return o.failing ? failuresFelt(c, r, `during the fault ${down.join(', ')}`) : r;
}

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
        { name: 'unlimited', rechargeUsers: usersOn(c.w, undefined, 100, 'ru'), sku: SKU.unlimited, ratePerSec: 30, callers: [...f.groups, ...g.groups] },
        { name: 'limited', rechargeUsers: usersOn(c.w, undefined, 100, 'rl'), sku: SKU.limited, ratePerSec: 20 },
      ];
      const r = await baselineThenFault(c, parts, ['unlimited'], { baselineMs: seconds('FAULTS_BASELINE_SECONDS', 30, 20), faultMs: seconds('FAULTS_REDIS_OUTAGE_SECONDS', 60, 60), funding: [...f.funding, ...g.funding], failing: 'limited' }, async () => {
        proxy!.drop();
        return () => proxy!.restore();
      });
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
        const parts: Part[] = [{ name: 'recharges', rechargeUsers: usersOn(c.w, undefined, 200, 'am'), sku: SKU.unlimited, ratePerSec: 60 }];
        const r = await baselineThenFault(c, parts, ['recharges'], { baselineMs: seconds('FAULTS_BASELINE_SECONDS', 30, 20), faultMs: seconds('FAULTS_AMQP_OUTAGE_SECONDS', 60, 60), funding: [] }, async () => {
          proxy.drop();
          return () => proxy.restore();
        });
        const lost = fs.readFileSync(second.log, 'utf8').split('\n').filter((l) => /broker disconnected|Heartbeat timeout/.test(l)).length;
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
      r.healthy = [{ part: 'first probe order after the re-declare', baselinePerSec: NaN, faultPerSec: NaN, ratio: NaN, baselineP99Ms: NaN, faultP99Ms: consumedMs, goal: '≤ 10 s', ok: consumedMs <= 10_000 }];
      return r;
    }),
};

export const PARTIAL_SCENARIOS: Scenario[] = [shardOutage('refuse'), shardOutage('silent'), redisSilent, amqpSilentOneWorker, longOutage, queueRedeclared];
