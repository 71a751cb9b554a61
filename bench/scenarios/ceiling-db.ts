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
export type DbLevel = (c: number) => { warm(): void; end(p: DbPoint): void };

/** Users per pgbench client; a client only ever touches its own users (as the pipeline callers do). */
export const USERS_PER_CLIENT = 50;

/**
 * The partake handler's SQL (workers/partake/store.ts lockQuota, applyPartake with the outbox task
 * in its CTE): 2 statements in the transaction. Without `withTask` the task insert is a statement
 * of its own (the handler before the task joined the CTE: a variant).
 */
function partakeStatements(t: number, day: string, month: string, withTask = false): string {
  const s = String(t).padStart(3, '0');
  const user = `('p${t}-' || :u::text)`;
  const cols = 'order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state';
  const task = `INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time) SELECT ${user}, 'partake.created', 'partake.created:' || :oid::text, ('{"id":"partake.created:' || :oid::text || '","timestamp":1763776800000,"data":{"orderId":"' || :oid::text || '","userId":"' || ${user} || '","activityId":${ACTIVITY_ID},"strategyId":${STRATEGY_ID},"orderTime":"2026-11-22T02:00:00.000Z"}}')::jsonb, 'create', now(), now(), now()`;
  return `\\set u :client_id * ${USERS_PER_CLIENT} + random(0, ${USERS_PER_CLIENT - 1})
\\set oid random(100000000000, 999999999999)
BEGIN;
SELECT a.total_count, a.total_count_surplus, a.day_count, a.month_count, d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus, (SELECT row_to_json(o) FROM (SELECT ${cols} FROM user_raffle_order_${s} WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND order_state = 'create' LIMIT 1) o) AS open FROM raffle_activity_account a LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = '${day}' LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = '${month}' WHERE a.user_id = ${user} AND a.activity_id = ${ACTIVITY_ID} FOR UPDATE OF a;
WITH m AS (INSERT INTO raffle_activity_account_month AS r (user_id, activity_id, month, month_count, month_count_surplus, create_time, update_time) VALUES (${user}, ${ACTIVITY_ID}, '${month}', 0, 0, now(), now()) ON CONFLICT (user_id, activity_id, month) DO UPDATE SET month_count_surplus = r.month_count_surplus - 1, update_time = now() WHERE r.month_count_surplus > 0 RETURNING month_count_surplus AS surplus), d AS (INSERT INTO raffle_activity_account_day AS r (user_id, activity_id, day, day_count, day_count_surplus, create_time, update_time) VALUES (${user}, ${ACTIVITY_ID}, '${day}', 0, 0, now(), now()) ON CONFLICT (user_id, activity_id, day) DO UPDATE SET day_count_surplus = r.day_count_surplus - 1, update_time = now() WHERE r.day_count_surplus > 0 RETURNING day_count_surplus AS surplus), a AS (UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1, day_count_surplus = (SELECT surplus FROM d), month_count_surplus = (SELECT surplus FROM m), update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND total_count_surplus > 0 AND EXISTS (SELECT 1 FROM d) AND EXISTS (SELECT 1 FROM m) RETURNING 1), o AS (INSERT INTO user_raffle_order_${s} (${cols}, create_time, update_time) SELECT :oid::text, ${user}, ${ACTIVITY_ID}, 'Bench raffle', ${STRATEGY_ID}, now(), 'create', now(), now() FROM a RETURNING 1)${withTask ? `, t AS (${task} FROM o ON CONFLICT (message_id) DO NOTHING RETURNING id) SELECT (SELECT count(*)::int FROM o) AS n, (SELECT id FROM t) AS task_id;` : ` SELECT count(*)::int AS n FROM o;
${task} ON CONFLICT (message_id) DO NOTHING RETURNING id;`}
COMMIT;
UPDATE user_raffle_order_${s} SET order_state = 'used', update_time = now() WHERE user_id = ${user} AND order_id = :oid::text AND order_state = 'create' RETURNING ${cols};
`;
}

const partakeScript = (t: number, day: string, month: string) => partakeStatements(t, day, month, true);

/** The partake handler's SQL before deadd17: 9 statements (kept as a variant to show that step). */
function partakeNineScript(t: number, day: string, month: string): string {
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

/** The statements of one new recharge; `k` names its variables (several in one grouped transaction). */
function rechargeBody(t: number, day: string, month: string, k = ''): { sets: string; sql: string } {
  const s = String(t).padStart(3, '0');
  const user = `('q${t}-' || :u${k}::text)`;
  const obn = `('bench-' || :obn${k}::text)`;
  // A fresh (user, outBusinessNo) every time: the path of a new recharge of an unlimited SKU.
  const sets = `\\set u${k} random(0, 4999)
\\set obn${k} random(1, 999999999999)
\\set lk${k} random(1, 999999999999999)
\\set oid${k} random(100000000000, 999999999999)
`;
  const sql = `SELECT pg_advisory_xact_lock(:lk${k});
SELECT pg_advisory_xact_lock_shared(${lockKey(`stock-sku:${SKUS.plenty}`)}), EXISTS (SELECT 1 FROM raffle_activity_order_${s} WHERE user_id = ${user} AND out_business_no = ${obn}) OR EXISTS (SELECT 1 FROM raffle_activity_order_rejection_${s} WHERE user_id = ${user} AND out_business_no = ${obn}) AS seen;
WITH ord AS (INSERT INTO raffle_activity_order_${s} (user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time, total_count, day_count, month_count, pay_type, pay_amount, state, out_business_no) VALUES (${user}, ${SKUS.unlimitedA}, ${ACTIVITY_ID}, 'Bench raffle', ${STRATEGY_ID}, :oid${k}::text, now(), 10, 3, 6, 'free', 0, 'completed', ${obn})), d AS (UPDATE raffle_activity_account_day SET day_count = day_count + 3, day_count_surplus = day_count_surplus + 3, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND day = '${day}'), m AS (UPDATE raffle_activity_account_month SET month_count = month_count + 6, month_count_surplus = month_count_surplus + 6, update_time = now() WHERE user_id = ${user} AND activity_id = ${ACTIVITY_ID} AND month = '${month}') INSERT INTO raffle_activity_account AS a (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus) VALUES (${user}, ${ACTIVITY_ID}, 10, 10, 3, 3, 6, 6) ON CONFLICT (user_id, activity_id) DO UPDATE SET total_count = a.total_count + 10, total_count_surplus = a.total_count_surplus + 10, day_count = a.day_count + 3, day_count_surplus = a.day_count_surplus + 3, month_count = a.month_count + 6, month_count_surplus = a.month_count_surplus + 6, update_time = now();
INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time) VALUES (${user}, 'recharge.completed', 'recharge.completed:' || :oid${k}::text, ('{"id":"recharge.completed:' || :oid${k}::text || '","timestamp":1763776800000,"data":{"orderId":"' || :oid${k}::text || '","userId":"' || ${user} || '","sku":${SKUS.unlimitedA},"activityId":${ACTIVITY_ID},"totalCount":10,"dayCount":3,"monthCount":6,"outBusinessNo":"' || ${obn} || '"}}')::jsonb, 'create', now(), now(), now()) ON CONFLICT (message_id) DO NOTHING RETURNING id;
`;
  return { sets, sql };
}

function rechargeScript(t: number, day: string, month: string): string {
  const b = rechargeBody(t, day, month);
  return `${b.sets}BEGIN;\n${b.sql}COMMIT;\n`;
}

/**
 * Hot-path variant: `group` recharges of one shard in one transaction (one commit, one WAL flush),
 * each with its own statements; a refusal is data, so no savepoints are needed on the common path.
 */
function groupedRechargeScript(group: number) {
  return (t: number, day: string, month: string): string => {
    const bodies = Array.from({ length: group }, (_, i) => rechargeBody(t, day, month, String(i)));
    return `${bodies.map((b) => b.sets).join('')}BEGIN;\n${bodies.map((b) => b.sql).join('')}COMMIT;\n`;
  };
}

/**
 * Hot-path cost check: the statement(s) plus the outbox fast path that follows every commit today
 * (infra/relay.ts publishNow: claim the new task, then mark it completed after the publish), two
 * more autocommit writes per message. The broker publish itself is not in it.
 */
function withFastPath(script: (t: number, day: string, month: string) => string) {
  return (t: number, day: string, month: string): string =>
    script(t, day, month).replace(/RETURNING id;\nCOMMIT;\n/, `RETURNING id \\gset
COMMIT;
UPDATE task t SET next_attempt_at = now() + 30000 * interval '1 millisecond', update_time = now() WHERE t.id = ANY(ARRAY[:id]::bigint[]) AND t.state = 'create' AND t.next_attempt_at <= t.update_time + interval '1 second' RETURNING t.id::text AS id, t.topic, t.message_id, t.message, t.attempts;
UPDATE task SET state = 'completed', update_time = now() WHERE id = ANY(ARRAY[:id]::bigint[]) AND state IN ('create', 'fail');
`);
}

/** What one pgbench run executes: the handlers' SQL, or a hot-path variant of it. */
export type Variant = Readonly<{ name: string; kind: DbKind; mode: 'prepared' | 'extended'; perTransaction: number; script: (t: number, day: string, month: string) => string; about: string }>;

export const BASE: Record<DbKind, Variant> = {
  partake: { name: 'partake', kind: 'partake', mode: 'prepared', perTransaction: 1, script: partakeScript, about: 'the partake handler\'s SQL, prepared' },
  recharge: { name: 'recharge', kind: 'recharge', mode: 'prepared', perTransaction: 1, script: rechargeScript, about: 'the recharge handler\'s SQL, prepared' },
};

/** `--variants`: what each hot-path step is worth on the database side alone. */
export const VARIANTS: readonly Variant[] = [
  { name: 'partake, unnamed statements', kind: 'partake', mode: 'extended', perTransaction: 1, script: partakeScript, about: 'parse + plan every statement, as node-postgres does without a statement name (the workers today)' },
  { name: 'partake, 9 statements', kind: 'partake', mode: 'prepared', perTransaction: 1, script: partakeNineScript, about: 'the handler before deadd17: one statement per row' },
  { name: 'partake, task separately', kind: 'partake', mode: 'prepared', perTransaction: 1, script: (t, d, m) => partakeStatements(t, d, m, false), about: '3 statements: the outbox insert after the deduction CTE (the handler before row 10)' },
  { name: 'partake + outbox fast path', kind: 'partake', mode: 'prepared', perTransaction: 1, script: withFastPath(partakeScript), about: 'plus the claim and mark-completed writes of publishNow' },
  { name: 'recharge + outbox fast path', kind: 'recharge', mode: 'prepared', perTransaction: 1, script: withFastPath(rechargeScript), about: 'plus the claim and mark-completed writes of publishNow' },
  { name: 'recharge, unnamed statements', kind: 'recharge', mode: 'extended', perTransaction: 1, script: rechargeScript, about: 'parse + plan every statement, as node-postgres does without a statement name (the workers today)' },
  { name: 'recharge, 8 per transaction', kind: 'recharge', mode: 'prepared', perTransaction: 8, script: groupedRechargeScript(8), about: 'grouped commits' },
];

export type DbKind = 'partake' | 'recharge';

/** Writes the scripts of a variant (one per split table) and returns their paths. */
export function writeScripts(dir: string, v: Variant, config: Config): string[] {
  const { day, month } = periodOf(new Date(), config.timeZone);
  fs.mkdirSync(dir, { recursive: true });
  const slug = v.name.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '');
  return Array.from({ length: config.shardTableCount }, (_, t) => {
    const file = path.join(dir, `${slug}_${String(t).padStart(3, '0')}.sql`);
    fs.writeFileSync(file, v.script(t, day, month));
    return file;
  });
}

type PgbenchRun = { tps: number; failed: number; transactions: number; logPrefix: string; output: string };

function runPgbench(url: string, clients: number, seconds: number, scripts: string[], logPrefix: string, mode: Variant['mode'], onTps: (tps: number) => void): Promise<PgbenchRun> {
  const u = new URL(url);
  const args = [
    '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres'),
    '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds),
    '-l', `--log-prefix=${logPrefix}`, '-P', '1',
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
      split.map((n, i) => (n > 0 ? runPgbench(config.shardUrls[i]!, n, seconds, scripts, path.join(dir, `log-${kind}-c${c}-s${i + 1}`), v.mode, (t) => {
        tps[i] = t;
        bar.tick(Math.round(t * v.perTransaction));
        if (warmAt === undefined) (warmAt = Date.now(), hooks?.warm());
      }) : undefined)),
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
    const point: DbPoint = { concurrency: c, throughput: round(throughput), latency: summarize(latencies), failed, transactions, ...(warmAt !== undefined ? { warmTransactions: logs.reduce((a, l) => a + l.since, 0) } : {}) };
    hooks?.end(point);
    points.push(point);
  }
  return points;
}
