import pg from 'pg';
import { route, splitSuffix } from '../../domain/router';
import { QUEUES } from '../../infra/topology';
import type { PartakeInput, RechargeInput, UseInput } from '../support/books';
import { startProxy, type FaultProxy } from '../support/proxy';
import { judge, type Series, type Window } from './figures';
import { BASE_ENV, failuresFelt, finish as finishBooks, type Ctx, type Result } from './harness';
import { ACTIVITY, SKU, catalog } from './load';
import { sleep, World, type ProxiedService, type Reply } from './world';

/**
 * The harness of the partial-failure scenarios (scenarios-partial.ts): a world with a proxy in front
 * of one dependency, users placed on a chosen shard, a paced load whose every piece of work is timed,
 * and `baselineThenFault`, which runs the same load without and with the fault and judges the
 * healthy part against its own baseline (figures.ts).
 */
const quickRun = process.argv.includes('--quick');
/** A duration in ms: the environment variable `name` (seconds) if set, else the full or quick run's default. */
export const seconds = (name: string, full: number, quick: number) => Number(process.env[name] ?? (quickRun ? quick : full)) * 1000;
export const runTag = Math.random().toString(36).slice(2, 6);

/** A world with `npm start`; `shardProxy` puts a fault proxy in front of that shard database only. */
export async function inWorld<T>(o: { env?: Record<string, string>; shardProxy?: number; proxy?: ProxiedService; stock?: number }, body: (c: Ctx, proxy?: FaultProxy) => Promise<T>): Promise<T> {
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
export function usersOn(w: World, shard: number | undefined, n: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const u = `${prefix}-${runTag}-${i}`;
    if (shard === undefined || route(u, w.config.shardUrls.length, w.config.shardTableCount).shard === shard) out.push(u);
  }
  return out;
}

export type Sent = { input: RechargeInput; part: string; at: number };
export type Round = { part: string; start: number; end: number; call: PartakeInput; use?: UseInput };

/** The load both phases share: paced recharges per part, and partake + use rounds by callers per part. */
export type Load = { sent: Sent[]; rounds: Round[]; stop(): Promise<void> };

/** `labels`: how the part's recharges and partakes are named in the table (default: `<name> recharges`, `<name> partakes`). */
export type Part = Readonly<{ name: string; rechargeUsers: string[]; sku: number; ratePerSec: number; callers?: string[][]; labels?: Readonly<{ recharges: string; partakes: string }> }>;

/** Starts the load: each part's recharges at its rate (open loop), each partake caller in a closed loop (one round per 250 ms at most). */
export function startLoad(w: World, parts: readonly Part[]): Load {
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
            const call: PartakeInput = {
              userId,
              activityId: ACTIVITY,
              replies: r ? [{ code: r.code, orderId: r.data?.orderId !== undefined ? String(r.data.orderId) : undefined }] : [],
              sentAt: start,
              okAt: r?.code === '0000' ? end : undefined,
            };
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
export async function orderTimes(w: World): Promise<Map<string, number>> {
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

/** The samples of each part: recharges by the committed order's `order_time`, partakes by their reply. */
async function seriesOf(w: World, load: Load, parts: readonly Part[], which: { healthy: readonly string[]; failing?: string }): Promise<Series[]> {
  const times = await orderTimes(w);
  return [...which.healthy, ...(which.failing ? [which.failing] : [])].flatMap((part) => [
    {
      name: parts.find((p) => p.name === part)?.labels?.recharges ?? `${part} recharges`,
      failing: part === which.failing,
      samples: load.sent.filter((s) => s.part === part).map((s) => ({ at: s.at, done: times.get(`${s.input.userId}/${s.input.outBusinessNo}`) })),
    },
    {
      name: parts.find((p) => p.name === part)?.labels?.partakes ?? `${part} partakes`,
      failing: part === which.failing,
      samples: load.rounds.filter((r) => r.part === part && r.call.replies[0]?.code === '0000').map((r) => ({ at: r.start, done: r.end })),
    },
  ]);
}

/** After the load: idle, the strict books (every partake planned to succeed), no worker restart. */
export async function finish(c: Ctx, faultEnd: number, load: Load, o: { extra?: string[]; funding?: RechargeInput[] } = {}): Promise<Result> {
  const r = await finishBooks(
    c,
    faultEnd,
    {
      recharges: [...(o.funding ?? []), ...load.sent.map((s) => s.input)],
      partakes: load.rounds.map((x) => x.call),
      uses: load.rounds.flatMap((x) => (x.use ? [x.use] : [])),
      expectPartakes: load.rounds.length,
    },
    o.extra,
  );
  const restarts = c.w.grepLogs(/worker exited, restarting/);
  if (restarts.length) r.books.violations.push(`${restarts.length} worker restart(s) during the run: ${restarts[0]!.slice(0, 300)}`);
  return r;
}

/** Funds partake callers: each of `callers` × `usersPer` users gets 10 chances (SKU quota10). */
export async function fund(c: Ctx, shard: number, callers: number, usersPer: number, prefix: string): Promise<{ groups: string[][]; funding: RechargeInput[] }> {
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
export async function baselineThenFault(
  c: Ctx,
  parts: Part[],
  healthy: string[],
  o: { baselineMs: number; faultMs: number; funding: RechargeInput[]; failing?: string },
  inject: () => Promise<() => Promise<void> | void>,
): Promise<Result> {
  await c.w.waitIdle();
  const load = startLoad(c.w, parts);
  const warm = Date.now();
  await sleep(o.baselineMs);
  const base: Window = { from: warm + 3_000, to: Date.now() };
  const end = await inject();
  const faultFrom = Date.now();
  await sleep(o.faultMs);
  await end();
  const fault: Window = { from: faultFrom, to: Date.now() };
  await sleep(10_000);
  await load.stop();
  const r = await finish(c, fault.to, load, { funding: o.funding });
  const judged = judge(await seriesOf(c.w, load, parts, { healthy, failing: o.failing }), base, fault);
  r.healthy = judged.rows;
  r.books.violations.push(...judged.violations);
  const down = r.healthy.filter((h) => h.part.includes('failing part')).map((h) => `${h.part.replace(' (the failing part)', '')} ${(h.ratio * 100).toFixed(0)} % of baseline`);
  // npm start's workers felt it (the second worker of amqp-silent-one-worker shows it in its own log instead).
  return o.failing ? failuresFelt(c, r, `during the fault ${down.join(', ')}`) : r;
}
