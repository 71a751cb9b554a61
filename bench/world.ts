import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { route } from '../domain/router';
import { periodOf } from '../domain/calendar';
import type { Config } from '../infra/config';
import { CEILING_USER_PATTERN, ceilingUser } from './scenarios/ceiling-users';

/** The bench catalog: one open activity, two unlimited SKUs and two limited ones (one runs out). */
export const ACTIVITY_ID = 100301;
export const STRATEGY_ID = 100006;
export const SKUS = { unlimitedA: 9011, unlimitedB: 9012, scarce: 9013, plenty: 9014 } as const;
export const RECHARGE_SKUS = [SKUS.unlimitedA, SKUS.unlimitedB, SKUS.scarce, SKUS.plenty] as const;
/** Quota a preloaded account (and a ceiling account) starts with: never runs out during a bench. */
export const BIG = 1_000_000_000;

export function catalogFor(n: number) {
  const year = new Date().getUTCFullYear();
  return {
    activities: [
      {
        activityId: ACTIVITY_ID,
        name: 'Bench raffle',
        desc: 'npm run bench',
        strategyId: STRATEGY_ID,
        beginTime: `${year - 1}-01-01T00:00:00Z`,
        endTime: `${year + 2}-01-01T00:00:00Z`,
        state: 'open',
      },
    ],
    counts: [{ activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 }],
    skus: [
      { sku: SKUS.unlimitedA, activityId: ACTIVITY_ID, activityCountId: 11101, stockCount: -1, productAmount: '0' },
      { sku: SKUS.unlimitedB, activityId: ACTIVITY_ID, activityCountId: 11101, stockCount: -1, productAmount: '1.50' },
      // A quarter of the recharges ask for this SKU; 40 % of them find stock, the rest are rejected.
      { sku: SKUS.scarce, activityId: ACTIVITY_ID, activityCountId: 11101, stockCount: Math.max(1, Math.floor(n / 10)), productAmount: '0' },
      { sku: SKUS.plenty, activityId: ACTIVITY_ID, activityCountId: 11101, stockCount: n * 10, productAmount: '0' },
    ],
    behaviorRebates: [],
  };
}

/** `npm run catalog -- load FILE` in the bench world, as an operator would. */
export async function loadCatalogFile(file: string, catalog: unknown, env: Record<string, string>): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(catalog, null, 2));
  await new Promise<void>((resolve, reject) =>
    execFile('npm', ['run', '--silent', 'catalog', '--', 'load', file], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`catalog load failed: ${stderr || err.message}`)) : resolve(),
    ),
  );
}

export type Pools = Readonly<{ shards: pg.Pool[]; global: pg.Pool; close(): Promise<void> }>;

export function openPools(config: Config): Pools {
  const mk = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: 4, application_name: 'activity-quota:bench' });
    p.on('error', () => undefined);
    return p;
  };
  const shards = config.shardUrls.map(mk);
  const global = mk(config.databaseUrl);
  return { shards, global, close: async () => void (await Promise.allSettled([global, ...shards].map((p) => p.end()))) };
}

/**
 * Accounts for the pipeline's partake callers, inserted straight into their shards with SQL (much
 * faster than recharging them through the pipeline): total / day / month = BIG. Day and month rows
 * are not created: the first partake of each user creates them, as in production.
 */
export async function preloadAccounts(pools: Pools, config: Config, userIds: readonly string[]): Promise<void> {
  const byShard = new Map<number, string[]>();
  for (const u of userIds) {
    const s = route(u, config.shardUrls.length, config.shardTableCount).shard;
    byShard.set(s, [...(byShard.get(s) ?? []), u]);
  }
  for (const [s, users] of byShard) {
    await pools.shards[s - 1]!.query(
      `INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
       SELECT u, $2, $3, $3, $3, $3, $3, $3 FROM unnest($1::text[]) u
       ON CONFLICT (user_id, activity_id) DO NOTHING`,
      [users, ACTIVITY_ID, BIG],
    );
  }
}

/**
 * Accounts for the database ceiling (`pgbench`), in every shard: partake users `ceilingUser('partake',
 * t, n)` for split table t and n < users, with today's and this month's rows, all with BIG quota.
 * These users are never routed by the pipeline (the ceiling scripts pick the split table themselves).
 */
export async function preloadCeilingAccounts(pools: Pools, config: Config, users: number): Promise<void> {
  const { day, month } = periodOf(new Date(), config.timeZone);
  for (const pool of pools.shards) {
    for (let t = 0; t < config.shardTableCount; t++) {
      const ids = `SELECT ($4::bigint + g)::text AS u FROM generate_series(0, $1::int - 1) g`;
      const params = [users, ACTIVITY_ID, BIG, ceilingUser('partake', t, 0)];
      await pool.query(
        `INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
        SELECT u, $2, $3, $3, $3, $3, $3, $3 FROM (${ids}) x ON CONFLICT DO NOTHING`,
        params,
      );
      await pool.query(
        `INSERT INTO raffle_activity_account_day (user_id, activity_id, day, day_count, day_count_surplus)
        SELECT u, $2, $5, $3, $3 FROM (${ids}) x ON CONFLICT DO NOTHING`,
        [...params, day],
      );
      await pool.query(
        `INSERT INTO raffle_activity_account_month (user_id, activity_id, month, month_count, month_count_surplus)
        SELECT u, $2, $5, $3, $3 FROM (${ids}) x ON CONFLICT DO NOTHING`,
        [...params, month],
      );
    }
  }
}

/**
 * Removes what the ceiling wrote, so that the relay does not publish it and counts stay clean, and
 * leaves the tables as the pipeline (or the next ceiling) would find them in a new world. A table
 * that holds only the ceiling's rows (its orders and tasks: the ceilings run before the pipeline
 * starts) is emptied with TRUNCATE, which also forgets its statistics; the other tables are vacuumed
 * and analyzed. Not `DELETE` and `VACUUM ANALYZE` everywhere: that recorded the order and task
 * tables as empty, and every connection that then planned its statements (one generic plan each, kept
 * for the connection's life: infra/db.ts) looked orders and tasks up by sequential scans of tables
 * that grew by thousands of rows a second (docs/BENCHMARKS.md, hot path row 25).
 */
export async function removeCeilingRows(pools: Pools, config: Config): Promise<void> {
  const suffixes = Array.from({ length: config.shardTableCount }, (_, t) => String(t).padStart(3, '0'));
  const tables = ['task', ...suffixes.flatMap((s) => [`user_raffle_order_${s}`, `raffle_activity_order_${s}`])];
  for (const pool of pools.shards) {
    const truncated: string[] = [];
    for (const table of tables) {
      const { rows } = await pool.query(`SELECT EXISTS (SELECT 1 FROM ${table} WHERE user_id !~ $1) AS others`, [CEILING_USER_PATTERN]);
      if (rows[0].others) {
        await pool.query(`DELETE FROM ${table} WHERE user_id ~ $1`, [CEILING_USER_PATTERN]);
      } else {
        await pool.query(`TRUNCATE ${table}`);
        truncated.push(table);
      }
    }
    const { rows } = await pool.query(`SELECT format('%I', relname) AS t FROM pg_stat_user_tables WHERE relname <> ALL($1::text[])`, [truncated]);
    if (rows.length) await pool.query(`VACUUM ANALYZE ${rows.map((r) => r.t).join(', ')}`).catch(() => undefined);
  }
}

/** Versions and size of this machine, for the report. */
export async function machine(pools: Pools): Promise<Record<string, unknown>> {
  const os = await import('node:os');
  const run = (cmd: string, args: string[]) => new Promise<string>((resolve) => execFile(cmd, args, { timeout: 20_000 }, (err, out) => resolve(err ? '' : String(out).trim())));
  const pgVersion = (await pools.global.query('SHOW server_version').catch(() => ({ rows: [{ server_version: '?' }] }))).rows[0].server_version;
  const rabbit = (await run('rabbitmqctl', ['version'])) || '?';
  const redis = /redis_version:(\S+)/.exec(await run('redis-cli', ['info', 'server']))?.[1] ?? '?';
  const pgbench = (await run('pgbench', ['--version'])).replace(/^pgbench \(PostgreSQL\) /, '') || '?';
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    postgres: pgVersion,
    rabbitmq: rabbit,
    redis,
    pgbench,
    loadavg: os.loadavg().map((v) => Number(v.toFixed(2))),
  };
}
