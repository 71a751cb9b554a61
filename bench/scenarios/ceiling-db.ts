import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../infra/config';
import { log, progress, round, summarize, type Latency } from '../support';
import { ceilingDefines, groupedRechargeScript, partakeScript, rechargeScript } from './ceiling-sql';

/**
 * The database ceiling: the per-request SQL of a partake and of a recharge, the handlers' own
 * statement texts (bench/scenarios/ceiling-sql.ts builds the scripts from them), run by `pgbench`
 * straight against the bench's shard databases: prepared statements, C clients split over the
 * shards, the split table picked per transaction (one script per table suffix).
 */
export type DbPoint = Readonly<{
  concurrency: number;
  throughput: number;
  latency: Latency;
  failed: number;
  /** pgbench transactions processed over the whole run (for CPU per transaction); × perTransaction for messages. */
  transactions: number;
  /** Transactions that ended after the level's `warm()` (pgbench's first progress report), when it came. */
  warmTransactions?: number;
}>;

/**
 * Per concurrency level: `warm()` at pgbench's first progress report (1 s in, every client
 * connected and its statements prepared), `end(point)` when the level is done. The bench's CPU
 * spans start at `warm()`, so that the ceiling's per-transaction database CPU leaves out the
 * backends' start-up (~8 ms of CPU each here), which the pipeline's long-lived pools do not pay.
 */
export type DbLevel = (c: number) => { warm(): void; end(p: DbPoint): void | Promise<void> };

/** What one pgbench run executes: the handlers' SQL, or a hot-path variant of it. */
export type Variant = Readonly<{ name: string; kind: DbKind; mode: 'prepared' | 'extended'; perTransaction: number; script: (t: number) => string; about: string }>;

export const BASE: Record<DbKind, Variant> = {
  partake: { name: 'partake', kind: 'partake', mode: 'prepared', perTransaction: 1, script: partakeScript, about: "the partake handler's SQL, prepared" },
  recharge: { name: 'recharge', kind: 'recharge', mode: 'prepared', perTransaction: 1, script: rechargeScript, about: "the recharge handler's SQL, prepared" },
};

/** `--variants`: what each hot-path step is worth on the database side alone. */
export const VARIANTS: readonly Variant[] = [
  {
    name: 'partake, unnamed statements',
    kind: 'partake',
    mode: 'extended',
    perTransaction: 1,
    script: partakeScript,
    about: 'parse + plan every statement, as node-postgres does without a statement name',
  },
  {
    name: 'recharge, unnamed statements',
    kind: 'recharge',
    mode: 'extended',
    perTransaction: 1,
    script: rechargeScript,
    about: 'parse + plan every statement, as node-postgres does without a statement name',
  },
  { name: 'recharge, 8 per transaction', kind: 'recharge', mode: 'prepared', perTransaction: 8, script: groupedRechargeScript(8), about: 'grouped commits' },
];

export type DbKind = 'partake' | 'recharge';

/** Writes the scripts of a variant (one per split table) and returns their paths. */
export function writeScripts(dir: string, v: Variant, config: Config): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const slug = v.name.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '');
  return Array.from({ length: config.shardTableCount }, (_, t) => {
    const file = path.join(dir, `${slug}_${String(t).padStart(3, '0')}.sql`);
    fs.writeFileSync(file, v.script(t));
    return file;
  });
}

type PgbenchRun = { tps: number; failed: number; transactions: number; logPrefix: string; output: string };

function runPgbench(
  url: string,
  clients: number,
  seconds: number,
  scripts: string[],
  defines: Record<string, string>,
  logPrefix: string,
  mode: Variant['mode'],
  onTps: (tps: number) => void,
): Promise<PgbenchRun> {
  const u = new URL(url);
  const args = [
    '-h',
    u.hostname,
    '-p',
    u.port || '5432',
    '-U',
    decodeURIComponent(u.username || 'postgres'),
    '-n',
    '-M',
    mode,
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, 2)),
    '-T',
    String(seconds),
    '-l',
    `--log-prefix=${logPrefix}`,
    '-P',
    '1',
    ...Object.entries(defines).flatMap(([k, v]) => ['-D', `${k}=${v}`]),
    ...scripts.flatMap((f) => ['-f', f]),
    decodeURIComponent(u.pathname.slice(1)),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PGBENCH ?? 'pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password ?? '') } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => {
      output += d;
      for (const m of String(d).matchAll(/progress: [\d.]+ s, ([\d.]+) tps/g)) onTps(Number(m[1]));
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000);
    child.on('error', (err) => (clearTimeout(killer), reject(new Error(`pgbench could not start (${err.message}); set PGBENCH to its path`))));
    // 'close', not 'exit': on a loaded machine 'exit' can come before the last of stdout (the
    // summary with tps and the transaction count) has been read.
    child.on('close', (code) => {
      clearTimeout(killer);
      const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1] ?? /tps = ([\d.]+)/.exec(output)?.[1] ?? NaN);
      const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0);
      const transactions = Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1] ?? 0);
      if (code !== 0 && !Number.isFinite(tps)) return reject(new Error(`pgbench exited ${code}: ${output.slice(-800)}`));
      resolve({ tps, failed, transactions, logPrefix, output });
    });
  });
}

/**
 * Latencies (ms) of every transaction in pgbench's per-transaction logs `<prefix>.<pid>[.<thread>]`,
 * and how many ended at or after `sinceMs` (epoch ms; columns 5 and 6 are the end time, s and µs).
 */
function readLatencies(prefix: string, sinceMs = Infinity): { latencies: number[]; since: number } {
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  const latencies: number[] = [];
  let since = 0;
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith(`${base}.`)) continue;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const cols = line.split(' ');
      if (cols.length >= 3 && cols[2] !== 'failed' && cols[2] !== 'skipped') {
        latencies.push(Number(cols[2]) / 1000);
        if (Number(cols[4]) * 1000 + Number(cols[5]) / 1000 >= sinceMs) since++;
      }
    }
    fs.unlinkSync(path.join(dir, f));
  }
  return { latencies, since };
}

/** One pgbench per shard at once, `concurrency` clients split over them. */
export async function dbCeiling(config: Config, v: Variant, concurrencies: readonly number[], seconds: number, dir: string, level?: DbLevel): Promise<DbPoint[]> {
  const scripts = writeScripts(dir, v, config);
  const defines = ceilingDefines(config.timeZone);
  const kind = v.name.replace(/[^a-z0-9]+/gi, '-');
  const points: DbPoint[] = [];
  for (const c of concurrencies) {
    const shards = config.shardUrls.length;
    const split = Array.from({ length: shards }, (_, i) => Math.floor(c / shards) + (i < c % shards ? 1 : 0));
    const bar = progress(`ceiling db ${v.name} C=${c}`);
    const tps = split.map(() => 0);
    const hooks = level?.(c);
    let warmAt: number | undefined;
    const ticker = setInterval(() => bar.note(`pgbench on ${split.filter((n) => n > 0).length} shard(s): ${Math.round(tps.reduce((a, b) => a + b, 0) * v.perTransaction)}/s now`), 500);
    const runs = await Promise.all(
      split.map((n, i) =>
        n > 0
          ? runPgbench(config.shardUrls[i]!, n, seconds, scripts, defines, path.join(dir, `log-${kind}-c${c}-s${i + 1}`), v.mode, (t) => {
              tps[i] = t;
              bar.tick(Math.round(t * v.perTransaction));
              if (warmAt === undefined) (warmAt = Date.now()), hooks?.warm();
            })
          : undefined,
      ),
    );
    clearInterval(ticker);
    const done = runs.filter((r): r is PgbenchRun => r !== undefined);
    const logs = done.map((r) => readLatencies(r.logPrefix, warmAt));
    const latencies = logs.flatMap((l) => l.latencies);
    const throughput = done.reduce((a, r) => a + r.tps, 0) * v.perTransaction;
    bar.set(latencies.length * v.perTransaction);
    bar.done();
    const failed = done.reduce((a, r) => a + r.failed, 0);
    if (failed) log(`pgbench ${v.name} C=${c}: ${failed} failed transactions`);
    const transactions = done.reduce((a, r) => a + r.transactions, 0);
    const point: DbPoint = {
      concurrency: c,
      throughput: round(throughput),
      latency: summarize(latencies),
      failed,
      transactions,
      ...(warmAt !== undefined ? { warmTransactions: logs.reduce((a, l) => a + l.since, 0) } : {}),
    };
    await hooks?.end(point);
    points.push(point);
  }
  return points;
}
