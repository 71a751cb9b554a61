import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { periodOf } from '../../domain/calendar';
import type { Config } from '../../infra/config';
import { lockKey } from '../lock-key';
import { log, progress, round, summarize, type Latency } from '../support';
import { ACTIVITY_ID, SKUS, STRATEGY_ID } from '../world';

/**
 * The database ceiling: the per-request SQL of a partake and of a recharge, as the handlers issue
 * it (workers/partake/store.ts, workers/recharge/store.ts), run by `pgbench` straight against the
 * bench's shard databases: prepared statements, C clients split over the shards, the split table
 * picked per transaction (one script per table suffix). Keep these scripts in step with the
 * handlers' SQL.
 */
export type DbPoint = Readonly<{ concurrency: number; throughput: number; latency: Latency; failed: number }>;

/** Users per pgbench client; a client only ever touches its own users (as the pipeline callers do). */
export const USERS_PER_CLIENT = 50;

function partakeScript(t: number, day: string, month: string): string {
  const s = String(t).padStart(3, '0');
  const user = `('p${t}-' || :u::text)`;
  // One pgbench transaction = one partake transaction + the `raffle-order.used` update that the
  // pipeline's caller sends after every partake (so that the next partake opens a new order).
  return `\\set u :client_id * ${USERS_PER_CLIENT} + random(0, ${USERS_PER_CLIENT - 1})
\\set oid random(100000000000, 999999999999)
BEGIN;
SELECT total_count, total_count_surplus, day_count, month_count FROM raffle_activity_account WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} FOR UPDATE;
SELECT order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state FROM user_raffle_order_${s} WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND order_state = 'create' LIMIT 1;
SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND month = '${month}' FOR UPDATE;
SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND day = '${day}' FOR UPDATE;
UPDATE raffle_activity_account_month SET month_count_surplus = month_count_surplus - 1, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND month = '${month}' AND month_count_surplus > 0;
UPDATE raffle_activity_account_day SET day_count_surplus = day_count_surplus - 1, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND day = '${day}' AND day_count_surplus > 0;
UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1, day_count_surplus = 999999, month_count_surplus = 999999, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND total_count_surplus > 0;
INSERT INTO user_raffle_order_${s} (order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state, create_time, update_time) VALUES (:oid::text, ${user}, ${ACTIVITY_ID}, 'Bench raffle', ${STRATEGY_ID}, now(), 'create', now(), now());
INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time) VALUES (${user}, 'partake.created', 'partake.created:' || :oid::text, ('{"id":"partake.created:' || :oid::text || '","timestamp":1763776800000,"data":{"orderId":"' || :oid::text || '","userId":"' || ${user} || '","activityId":${ACTIVITY_ID},"strategyId":${STRATEGY_ID},"orderTime":"2026-11-22T02:00:00.000Z"}}')::jsonb, 'create', now(), now(), now()) ON CONFLICT (message_id) DO NOTHING RETURNING id;
COMMIT;
UPDATE user_raffle_order_${s} SET order_state = 'used', update_time = now() WHERE user_id = ${user} AND order_id = :oid::text AND order_state = 'create' RETURNING order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state;
`;
}

function rechargeScript(t: number, day: string, month: string): string {
  const s = String(t).padStart(3, '0');
  const user = `('q${t}-' || :u::text)`;
  const obn = `('bench-' || :obn::text)`;
  // A fresh (user, outBusinessNo) every time: the path of a new recharge of an unlimited SKU.
  return `\\set u random(0, 4999)
\\set obn random(1, 999999999999)
\\set lk random(1, 999999999999999)
\\set oid random(100000000000, 999999999999)
BEGIN;
SELECT pg_advisory_xact_lock(:lk);
SELECT EXISTS (SELECT 1 FROM raffle_activity_order_${s} WHERE user_id = ${user} AND out_business_no = ${obn}) OR EXISTS (SELECT 1 FROM task WHERE message_id = 'recharge.rejected:' || ${user} || ':' || ${obn}) AS seen;
SELECT pg_advisory_xact_lock_shared(${lockKey(`stock-sku:${SKUS.plenty}`)});
WITH ord AS (INSERT INTO raffle_activity_order_${s} (user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time, total_count, day_count, month_count, pay_type, pay_amount, state, out_business_no) VALUES (${user}, ${SKUS.unlimitedA}, ${ACTIVITY_ID}, 'Bench raffle', ${STRATEGY_ID}, :oid::text, now(), 10, 3, 6, 'free', 0, 'completed', ${obn})), d AS (UPDATE raffle_activity_account_day SET day_count = day_count + 3, day_count_surplus = day_count_surplus + 3, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND day = '${day}'), m AS (UPDATE raffle_activity_account_month SET month_count = month_count + 6, month_count_surplus = month_count_surplus + 6, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND month = '${month}') INSERT INTO raffle_activity_account AS a (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus) VALUES (${user}, ${ACTIVITY_ID}, 10, 10, 3, 3, 6, 6) ON CONFLICT (user_id, activity_id) DO UPDATE SET total_count = a.total_count + 10, total_count_surplus = a.total_count_surplus + 10, day_count = a.day_count + 3, day_count_surplus = a.day_count_surplus + 3, month_count = a.month_count + 6, month_count_surplus = a.month_count_surplus + 6, update_time = now();
INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time) VALUES (${user}, 'recharge.completed', 'recharge.completed:' || :oid::text, ('{"id":"recharge.completed:' || :oid::text || '","timestamp":1763776800000,"data":{"orderId":"' || :oid::text || '","userId":"' || ${user} || '","sku":${SKUS.unlimitedA},"activityId":${ACTIVITY_ID},"totalCount":10,"dayCount":3,"monthCount":6,"outBusinessNo":"' || ${obn} || '"}}')::jsonb, 'create', now(), now(), now()) ON CONFLICT (message_id) DO NOTHING RETURNING id;
COMMIT;
`;
}

export type DbKind = 'partake' | 'recharge';

/** Writes the scripts for one kind (one per split table) and returns their paths. */
export function writeScripts(dir: string, kind: DbKind, config: Config): string[] {
  const { day, month } = periodOf(new Date(), config.timeZone);
  fs.mkdirSync(dir, { recursive: true });
  return Array.from({ length: config.shardTableCount }, (_, t) => {
    const file = path.join(dir, `${kind}_${String(t).padStart(3, '0')}.sql`);
    fs.writeFileSync(file, kind === 'partake' ? partakeScript(t, day, month) : rechargeScript(t, day, month));
    return file;
  });
}

type PgbenchRun = { tps: number; failed: number; logPrefix: string; output: string };

function runPgbench(url: string, clients: number, seconds: number, scripts: string[], logPrefix: string): Promise<PgbenchRun> {
  const u = new URL(url);
  const args = [
    '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres'),
    '-n', '-M', 'prepared', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds),
    '-l', `--log-prefix=${logPrefix}`,
    ...scripts.flatMap((f) => ['-f', f]),
    decodeURIComponent(u.pathname.slice(1)),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PGBENCH ?? 'pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password ?? '') } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000);
    child.on('error', (err) => (clearTimeout(killer), reject(new Error(`pgbench could not start (${err.message}); set PGBENCH to its path`))));
    child.on('exit', (code) => {
      clearTimeout(killer);
      const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1] ?? /tps = ([\d.]+)/.exec(output)?.[1] ?? NaN);
      const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0);
      if (code !== 0 && !Number.isFinite(tps)) return reject(new Error(`pgbench exited ${code}: ${output.slice(-800)}`));
      resolve({ tps, failed, logPrefix, output });
    });
  });
}

/** Latencies (ms) of every transaction in pgbench's per-transaction logs `<prefix>.<pid>[.<thread>]`. */
function readLatencies(prefix: string): number[] {
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  const out: number[] = [];
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith(`${base}.`)) continue;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const cols = line.split(' ');
      if (cols.length >= 3 && cols[2] !== 'failed' && cols[2] !== 'skipped') out.push(Number(cols[2]) / 1000);
    }
    fs.unlinkSync(path.join(dir, f));
  }
  return out;
}

/** One pgbench per shard at once, `concurrency` clients split over them. */
export async function dbCeiling(config: Config, kind: DbKind, concurrencies: readonly number[], seconds: number, dir: string): Promise<DbPoint[]> {
  const scripts = writeScripts(dir, kind, config);
  const points: DbPoint[] = [];
  for (const c of concurrencies) {
    const shards = config.shardUrls.length;
    const split = Array.from({ length: shards }, (_, i) => Math.floor(c / shards) + (i < c % shards ? 1 : 0));
    const bar = progress(`ceiling db ${kind} C=${c}`);
    const ticker = setInterval(() => bar.note(`pgbench ${split.filter((n) => n > 0).length} shard(s)`), 500);
    const runs = await Promise.all(
      split.map((n, i) => (n > 0 ? runPgbench(config.shardUrls[i]!, n, seconds, scripts, path.join(dir, `log-${kind}-c${c}-s${i + 1}`)) : undefined)),
    );
    clearInterval(ticker);
    const done = runs.filter((r): r is PgbenchRun => r !== undefined);
    const latencies = done.flatMap((r) => readLatencies(r.logPrefix));
    const throughput = done.reduce((a, r) => a + r.tps, 0);
    bar.set(latencies.length);
    bar.done();
    const failed = done.reduce((a, r) => a + r.failed, 0);
    if (failed) log(`pgbench ${kind} C=${c}: ${failed} failed transactions`);
    points.push({ concurrency: c, throughput: round(throughput), latency: summarize(latencies), failed });
  }
  return points;
}
