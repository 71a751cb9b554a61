import fs from 'node:fs';
import type { Driver } from '../driver';
import { log, now, processTree, round, sleep, summarize } from '../support';
import { ACTIVITY_ID, type Pools } from '../world';

/**
 * The soak (`npm run bench -- --soak MINUTES`): recharge, partake, use and expiry mixed at about half
 * of the measured peaks (docs/BENCHMARKS.md: partake ~530/s, recharge ~630/s; a quarter of each),
 * open loop, for MINUTES. Every minute: RSS of each worker, p99 of partake and of event delays,
 * outbox lag, and the row counts of the tables that must stay bounded. Goal (issue 14): no worker's
 * RSS grows over 10 % after minute 2, bounded tables, flat p99.
 */
/** The bench activity id, so that `preloadAccounts` gives the partake users their quota. */
export const SOAK_ACTIVITY = ACTIVITY_ID;
export const SOAK_TTL_SECONDS = 20;
/** Completed tasks and inbox rows are deleted after 2 minutes in the soak (RETENTION_SECONDS). */
export const SOAK_RETENTION_SECONDS = 120;
export const SOAK_SKUS = { free: 9411, limited: 9412 } as const;
export const SOAK_RATES = { partake: 130, recharge: 150, useShare: 0.7, duplicateShare: 0.05, unknownSkuShare: 0.02 } as const;
export const SOAK_PARTAKE_USERS = 3_000;
const RECHARGE_USERS = 5_000;

export const soakUser = (i: number) => `soak-p${i}`;

export function soakCatalog() {
  const year = new Date().getUTCFullYear();
  return {
    activities: [
      {
        activityId: SOAK_ACTIVITY,
        name: 'Soak raffle',
        desc: 'npm run bench -- --soak',
        strategyId: 100006,
        beginTime: `${year - 1}-01-01T00:00:00Z`,
        endTime: `${year + 2}-01-01T00:00:00Z`,
        state: 'open',
        raffleOrderTtlSeconds: SOAK_TTL_SECONDS,
      },
    ],
    counts: [{ activityCountId: 11401, totalCount: 10, dayCount: 3, monthCount: 6 }],
    skus: [
      { sku: SOAK_SKUS.free, activityId: SOAK_ACTIVITY, activityCountId: 11401, stockCount: -1, productAmount: '0' },
      { sku: SOAK_SKUS.limited, activityId: SOAK_ACTIVITY, activityCountId: 11401, stockCount: 100_000_000, productAmount: '1.00' },
    ],
    behaviorRebates: [],
  };
}

/** Resident memory (MB) of each worker process of `npm start` (by the name after `run.mjs`). */
export function workerRss(pgid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of processTree(pgid)) {
    const m = /(?:workers\/run\.ts|\/run\.mjs)\s+(\S+)/.exec(p.cmd);
    if (!m) continue;
    try {
      const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1] ?? 0);
      out[m[1]!] = round((out[m[1]!] ?? 0) + kb / 1024);
    } catch {
      /* gone */
    }
  }
  return out;
}

export type SoakMinute = Readonly<{
  minute: number;
  partakes: number;
  partakeP99: number;
  recharges: number;
  rechargeEventP99: number;
  cancelled: number;
  /** Seconds from an order reaching its TTL to its `raffle-order.cancelled` event, p99. */
  expiryLagP99: number;
  outboxLagSeconds: number;
  errors: number;
  rss: Record<string, number>;
  rows: Record<string, number>;
}>;

export type SoakResult = Readonly<{ minutes: number; rates: typeof SOAK_RATES; perMinute: SoakMinute[]; goals: Record<string, string> }>;

type Bucket = { partake: number[]; recharge: number[]; expiry: number[]; errors: number };
const bucket = (): Bucket => ({ partake: [], recharge: [], expiry: [], errors: 0 });

/** Row counts of the tables the soak watches, summed over shards and split tables; the oldest unsent task's age. */
export async function tableRows(pools: Pools, tables: number): Promise<{ rows: Record<string, number>; lag: number }> {
  const rows: Record<string, number> = {};
  const add = (k: string, n: unknown) => void (rows[k] = (rows[k] ?? 0) + Number(n ?? 0));
  let lag = 0;
  for (const p of pools.shards) {
    for (const r of (await p.query('SELECT state, count(*)::int AS n FROM task GROUP BY state')).rows) add(`task ${r.state}`, r.n);
    lag = Math.max(lag, Number((await p.query(`SELECT coalesce(extract(epoch FROM now() - min(create_time)), 0) AS s FROM task WHERE state IN ('create', 'fail')`)).rows[0].s));
    for (let t = 0; t < tables; t++) {
      const s = String(t).padStart(3, '0');
      const {
        rows: [o],
      } = await p.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE order_state = 'create')::int AS open FROM user_raffle_order_${s}`);
      add('raffle orders', o.n);
      add('raffle orders create', o.open);
      add('recharge orders', (await p.query(`SELECT count(*)::int AS n FROM raffle_activity_order_${s}`)).rows[0].n);
      add('rejections', (await p.query(`SELECT count(*)::int AS n FROM raffle_activity_order_rejection_${s}`)).rows[0].n);
    }
  }
  add('processed_message', (await pools.global.query('SELECT count(*)::int AS n FROM processed_message')).rows[0].n);
  return { rows, lag: round(lag) };
}

/** Runs the mixed open loop for `minutes`, sampling each minute. `pgid`: the `npm start` process group. */
export async function soakScenario(d: Driver, pools: Pools, tables: number, pgid: number, minutes: number, runId: string): Promise<SoakResult> {
  let current = bucket();
  const sentAt = new Map<string, number>();
  // Every event has a consumer, as downstream systems would be (an unroutable event is a failed task).
  await d.listen('activity.events', ['#'], (m) => {
    const body = parse(m.content);
    if (m.fields.routingKey === 'recharge.completed' && typeof body?.timestamp === 'number') current.recharge.push(Date.now() - body.timestamp);
    const made = body?.data?.orderId && sentAt.get(body.data.orderId);
    if (m.fields.routingKey === 'raffle-order.cancelled' && made) {
      current.expiry.push((Date.now() - made) / 1000 - SOAK_TTL_SECONDS);
      sentAt.delete(body.data.orderId);
    }
  });
  const perMinute: SoakMinute[] = [];
  const t0 = now();
  const end = t0 + minutes * 60_000;
  const loops = [
    paced(SOAK_RATES.partake, end, (i) => partakeOne(d, soakUser(i % SOAK_PARTAKE_USERS), () => current, sentAt)),
    paced(SOAK_RATES.recharge, end, (i) => rechargeOne(d, runId, i, () => current)),
  ];
  for (let minute = 1; minute <= minutes; minute++) {
    await sleep(Math.max(0, t0 + minute * 60_000 - now()));
    const b = current;
    current = bucket();
    const { rows, lag } = await tableRows(pools, tables);
    const m: SoakMinute = {
      minute,
      partakes: b.partake.length,
      partakeP99: round(summarize(b.partake).p99),
      recharges: b.recharge.length,
      rechargeEventP99: round(summarize(b.recharge).p99),
      cancelled: b.expiry.length,
      expiryLagP99: round(summarize(b.expiry).p99),
      outboxLagSeconds: lag,
      errors: b.errors,
      rss: workerRss(pgid),
      rows,
    };
    perMinute.push(m);
    log(
      `soak minute ${minute}/${minutes}: partake ${m.partakes} (p99 ${m.partakeP99} ms), recharge events ${m.recharges} (p99 ${m.rechargeEventP99} ms), expired ${m.cancelled} (lag p99 ${m.expiryLagP99} s), outbox lag ${lag} s, RSS ${JSON.stringify(m.rss)}, errors ${m.errors}`,
    );
  }
  await Promise.all(loops);
  return { minutes, rates: SOAK_RATES, perMinute, goals: soakGoals(perMinute) };
}

/** Calls `step(i)` `rate` times a second (due times fixed in advance: a backlog shows as latency) until `end`. */
async function paced(rate: number, end: number, step: (i: number) => Promise<void>): Promise<void> {
  const inflight = new Set<Promise<void>>();
  const t0 = now();
  for (let i = 0; ; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due >= end) break;
    if (due > now()) await sleep(due - now());
    const p = step(i).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.allSettled([...inflight]);
}

/** `b()`: the bucket of the minute in which the reply arrives. */
async function partakeOne(d: Driver, userId: string, b: () => Bucket, sentAt: Map<string, number>): Promise<void> {
  const due = now();
  try {
    const r = await d.rpc('activity.partake', { userId, activityId: SOAK_ACTIVITY }, 15_000);
    b().partake.push(r.at - due);
    if (r.body?.code !== '0000') return void b().errors++;
    const orderId = String(r.body.data.orderId);
    if (Math.random() < SOAK_RATES.useShare) await d.publish('', 'activity.raffle-order.used', { userId, orderId });
    else if (!sentAt.has(orderId)) sentAt.set(orderId, Date.parse(r.body.data.orderTime));
  } catch {
    b().errors++;
  }
}

async function rechargeOne(d: Driver, runId: string, i: number, b: () => Bucket): Promise<void> {
  // A few percent are redeliveries of an earlier request: duplicates, no event.
  const n = Math.random() < SOAK_RATES.duplicateShare && i > 100 ? i - 1 - Math.floor(Math.random() * 100) : i;
  // Every 50th asks for a SKU that does not exist: a rejection, kept in the rejection table.
  const sku = n % 50 === 7 ? 9_999_999 : n % 2 ? SOAK_SKUS.free : SOAK_SKUS.limited;
  try {
    await d.publish('', 'activity.recharge', { userId: `soak-r${n % RECHARGE_USERS}`, sku, outBusinessNo: `soak-${runId}-${n}` });
  } catch {
    b().errors++;
  }
}

function parse(content: Buffer): any {
  try {
    return JSON.parse(content.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The issue's goals, judged from the per-minute samples (minute 2 is the baseline). */
export function soakGoals(ms: readonly SoakMinute[]): Record<string, string> {
  const goals: Record<string, string> = {};
  const base = ms.find((m) => m.minute === 2);
  const last = ms[ms.length - 1];
  if (!base || !last || last === base) return { note: 'fewer than 3 minutes: no goal judged' };
  for (const w of Object.keys(base.rss)) {
    const after = ms.filter((m) => m.minute >= 2).map((m) => m.rss[w] ?? 0);
    const growth = (Math.max(...after) - base.rss[w]!) / base.rss[w]!;
    goals[`RSS ${w}`] = `${base.rss[w]} → max ${Math.max(...after)} MB (+${round(growth * 100)} %): ${growth <= 0.1 ? 'met' : 'NOT met'}`;
  }
  const later = ms.filter((m) => m.minute > 2);
  const p99 = (k: 'partakeP99' | 'rechargeEventP99') => Math.max(...later.map((m) => m[k]));
  goals['partake p99 flat'] = `minute 2 ${base.partakeP99} ms, worst later ${p99('partakeP99')} ms`;
  goals['recharge event p99 flat'] = `minute 2 ${base.rechargeEventP99} ms, worst later ${p99('rechargeEventP99')} ms`;
  for (const k of ['task completed', 'processed_message', 'raffle orders create']) goals[`rows ${k}`] = `minute 2 ${base.rows[k] ?? 0}, end ${last.rows[k] ?? 0}`;
  goals['expiry lag p99 (s after TTL)'] = `worst ${Math.max(...ms.map((m) => m.expiryLagP99).filter(Number.isFinite))} s (goal < 10)`;
  return goals;
}

/** The per-minute table and the goals, as markdown. */
export function soakMarkdown(r: SoakResult): string {
  const workers = [...new Set(r.perMinute.flatMap((m) => Object.keys(m.rss)))].sort();
  const rowKeys = ['task create', 'task fail', 'task dead', 'task completed', 'processed_message', 'raffle orders create', 'raffle orders', 'recharge orders', 'rejections'];
  const out = [
    `Soak: ${r.minutes} min, retention ${SOAK_RETENTION_SECONDS} s, partake ${r.rates.partake}/s (${r.rates.useShare * 100} % used, the rest expire after ${SOAK_TTL_SECONDS} s), recharge ${r.rates.recharge}/s (${r.rates.duplicateShare * 100} % duplicates, ${r.rates.unknownSkuShare * 100} % unknown SKUs: rejected).`,
    '',
    `| min | partakes | partake p99 ms | recharge events | event p99 ms | expired | expiry lag p99 s | outbox lag s | errors | ${workers.map((w) => `RSS ${w} MB`).join(' | ')} | ${rowKeys.join(' | ')} |`,
    `|${'---:|'.repeat(9 + workers.length + rowKeys.length)}`,
  ];
  for (const m of r.perMinute) {
    out.push(
      `| ${m.minute} | ${m.partakes} | ${m.partakeP99} | ${m.recharges} | ${m.rechargeEventP99} | ${m.cancelled} | ${m.expiryLagP99} | ${m.outboxLagSeconds} | ${m.errors} | ${workers.map((w) => m.rss[w] ?? '–').join(' | ')} | ${rowKeys.map((k) => m.rows[k] ?? 0).join(' | ')} |`,
    );
  }
  out.push('', ...Object.entries(r.goals).map(([k, v]) => `- ${k}: ${v}`));
  return out.join('\n');
}
