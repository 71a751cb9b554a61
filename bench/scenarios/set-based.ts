/**
 * Hot-path row 19 (docs/BENCHMARKS.md): what set-based statements for a whole group would save the
 * database, measured before building them. `npx tsx bench/scenarios/set-based.ts [--group 16]
 * [--clients 1,4] [--seconds 8] [--rounds 3] [--docs]` on a quiet machine (a world of its own,
 * removed after); `--docs` writes the table between the `set-based:gG` markers of docs/BENCHMARKS.md.
 *
 * Three shapes of the same partakes (with their `raffle-order.used`), run by pgbench on one shard
 * database, one split table, the users' day and month rows in place:
 * - `ceiling`: the database ceiling's script (one transaction per partake, the use on its own);
 * - `grouped`: group commit's shape today: G partakes in one transaction, each with its own
 *   statements (the handlers' texts), then G uses in one transaction, and one completion-mark
 *   UPDATE for the G outbox tasks (the relay's batched mark);
 * - `set-based`: the same G partakes as one lock-and-read and one write statement (`unnest`-style:
 *   a derived table of the group's users), G uses in one statement, and the same mark.
 * Per partake: PostgreSQL CPU (the postmaster's exited children, i.e. pgbench's backends, user +
 * system) and WAL (the server's insert position, full-page images included). Autovacuum is off
 * on the scratch tables so that its workers' CPU does not count; every point starts from emptied
 * order and task tables and vacuumed counters instead. The machine should be otherwise idle.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTestEnv } from '../../test/support/env';
import { ORDER_COLUMNS } from '../../workers/partake/store';
import { writeBetween } from '../support';
import { openPools, preloadCeilingAccounts } from '../world';
import { USE_ORDER_SQL } from '../../workers/partake/order-store';
import { PARTAKE_SQL } from '../../workers/partake/store';
import { ceilingDefines, partakeScript, pgbenchStatement, USERS_PER_CLIENT } from './ceiling-sql';
import { CEILING_USER_BASE } from './ceiling-users';

const { values } = parseArgs({
  options: {
    group: { type: 'string', default: '16' },
    clients: { type: 'string', default: '1,4' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    docs: { type: 'boolean', default: false },
  },
});
const G = Number(values.group);
const CLIENTS = values.clients.split(',').map(Number);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const T = '000';

/** The group's users (distinct: G ≤ USERS_PER_CLIENT), order ids and message ids, as a derived table. */
const groupRows = `SELECT (${CEILING_USER_BASE.partake} + :client_id * ${USERS_PER_CLIENT} + (:r::int + g) % ${USERS_PER_CLIENT})::text AS user_id,
         (:oidb::bigint + g)::text AS order_id, (:midb::bigint + g)::text AS mid
       FROM generate_series(0, ${G - 1}) g`;
const groupSets = ['\\set r random(0, 49)', '\\set oidb random(100000000000, 999999990000)', '\\set midb random(1000000000000000000, 8999999999999990000)'];
const mark = `WITH v AS (${groupRows}) UPDATE task SET state = 'completed', update_time = :now WHERE message_id IN (SELECT mid FROM v) AND state IN ('create', 'fail');`;

function groupedScript(): string {
  const sets = Array.from({ length: G }, (_, i) => [
    `\\set u${i} ${CEILING_USER_BASE.partake} + :client_id * ${USERS_PER_CLIENT} + (:r + ${i}) % ${USERS_PER_CLIENT}`,
    `\\set oid${i} :oidb + ${i}`,
    `\\set mid${i} :midb + ${i}`,
  ]).flat();
  const unit = (i: number) => [
    pgbenchStatement(PARTAKE_SQL.lockQuota(T), [`u${i}`, 'activity', 'day', 'month', `mid${i}`]),
    pgbenchStatement(PARTAKE_SQL.applyPartake(T), [`u${i}`, 'activity', 'month', 'zero', 'day', 'zero', 'now', `oid${i}`, 'aname', 'strategy', `mid${i}`, `u${i}`, 'ptopic', `mid${i}`, 'pmsg', 'due']),
  ];
  const uses = Array.from({ length: G }, (_, i) => pgbenchStatement(USE_ORDER_SQL(T), [`u${i}`, `oid${i}`, 'now', `mid${i}`]));
  return [...groupSets, ...sets, 'BEGIN;', ...Array.from({ length: G }, (_, i) => unit(i)).flat(), 'COMMIT;', 'BEGIN;', ...uses, 'COMMIT;', mark, ''].join('\n');
}

/** The group's day or month rows: created spent once, or one more spent where some are left. */
const spendPeriod = (p: 'day' | 'month') => `
       INSERT INTO raffle_activity_account_${p} AS r (user_id, activity_id, ${p}, ${p}_count, ${p}_count_surplus, create_time, update_time)
       SELECT user_id, :activity::bigint, :${p}::text, :zero::int, greatest(:zero::int - 1, 0), :now::timestamptz, :now::timestamptz FROM v
       ON CONFLICT (user_id, activity_id, ${p}) DO UPDATE SET ${p}_count_surplus = r.${p}_count_surplus - 1, update_time = :now
         WHERE r.${p}_count_surplus > 0
       RETURNING r.user_id, r.${p}_count_surplus AS surplus`;

function setBasedScript(): string {
  const lock = `WITH v AS (${groupRows})
     SELECT a.user_id, a.total_count, a.total_count_surplus, a.day_count, a.month_count,
            d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus,
            (SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${T}
               WHERE user_id = a.user_id AND activity_id = a.activity_id AND order_state = 'create' LIMIT 1) o) AS open,
            (SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${T}
               WHERE user_id = a.user_id AND activity_id = a.activity_id AND request_id = v.mid) o) AS mine
     FROM v JOIN raffle_activity_account a ON a.user_id = v.user_id AND a.activity_id = :activity
     LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = :day
     LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = :month
     ORDER BY a.user_id
     FOR UPDATE OF a;`;
  const apply = `WITH v AS (${groupRows}), m AS (${spendPeriod('month')}), d AS (${spendPeriod('day')}), a AS (
       UPDATE raffle_activity_account x SET total_count_surplus = x.total_count_surplus - 1,
         day_count_surplus = d.surplus, month_count_surplus = m.surplus, update_time = :now
       FROM d JOIN m USING (user_id)
       WHERE x.user_id = d.user_id AND x.activity_id = :activity AND x.total_count_surplus > 0
       RETURNING x.user_id
     ), o AS (
       INSERT INTO user_raffle_order_${T} (${ORDER_COLUMNS}, create_time, update_time, request_id)
       SELECT v.order_id, v.user_id, :activity::bigint, :aname::text, :strategy::bigint, :now::timestamptz, 'create', :now::timestamptz, :now::timestamptz, v.mid FROM v JOIN a USING (user_id)
       RETURNING user_id, request_id
     ), t AS (
       INSERT INTO task (user_id, topic, message_id, message, next_attempt_at, state, create_time, update_time)
       SELECT o.user_id, :ptopic::text, o.request_id, :pmsg::jsonb, :due::timestamptz, 'create', :now::timestamptz, :now::timestamptz FROM o
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id
     )
     SELECT (SELECT count(*)::int FROM o) AS n, (SELECT array_agg(id) FROM t) AS task_ids;`;
  const use = `WITH v AS (${groupRows})
     UPDATE user_raffle_order_${T} x SET order_state = 'used', update_time = :now, changed_by = v.mid
     FROM v WHERE x.user_id = v.user_id AND x.order_id = v.order_id AND x.order_state = 'create'
     RETURNING x.order_id;`;
  return [...groupSets, 'BEGIN;', lock, apply, 'COMMIT;', use, mark, ''].join('\n');
}

const SHAPES = [
  { name: 'ceiling', perTransaction: 1, script: partakeScript(0) },
  { name: 'grouped', perTransaction: G, script: groupedScript() },
  { name: 'set-based', perTransaction: G, script: setBasedScript() },
] as const;

type Point = Readonly<{ shape: string; clients: number; round: number; perSec: number; cpuMs: number; wal: number; failed: number }>;

const pointRow = (p: Point) => `| ${p.shape} | ${p.clients} | ${p.round} | ${Math.round(p.perSec)} | ${p.cpuMs.toFixed(3)} | ${Math.round(p.wal)} | ${p.failed} |`;

/** The points' table and, per client count, the ceiling's figures ÷ each shape's (the same round paired), as min – max. */
function report(points: readonly Point[]): string {
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}×`;
  const ratios = CLIENTS.flatMap((c) =>
    SHAPES.filter((s) => s.name !== 'ceiling').map((s) => {
      const pairs = points.filter((p) => p.clients === c && p.shape === s.name).map((p) => [points.find((q) => q.clients === c && q.round === p.round && q.shape === 'ceiling')!, p] as const);
      return `- C = ${c}, ceiling ÷ ${s.name}: PostgreSQL CPU ${spread(pairs.map(([a, b]) => a.cpuMs / b.cpuMs))}, WAL ${spread(pairs.map(([a, b]) => a.wal / b.wal))}`;
    }),
  );
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return [
    `Run ${new Date().toISOString().slice(0, 16)}Z: G = ${G} partakes per group, ${SECONDS} s per point, ${ROUNDS} round(s), ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load at the end ${load}.`,
    '',
    '| shape | clients | round | partakes /s | PostgreSQL CPU ms per partake | WAL bytes per partake (full-page images included) | failed |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...points.map(pointRow),
    '',
    ...ratios,
  ].join('\n');
}

/** User + system CPU (clock ticks) of the postmaster's exited children: pgbench's backends once they have gone. */
function childTicks(postmaster: number): number {
  const f = fs.readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[13]) + Number(f[14]); // cutime, cstime (fields 16 and 17)
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

async function main(): Promise<void> {
  const world = await createTestEnv();
  const pools = openPools(world.config);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-setbased-'));
  try {
    await preloadCeilingAccounts(pools, world.config, USERS_PER_CLIENT * Math.max(...CLIENTS));
    const url = new URL(world.config.shardUrls[0]!);
    const db = decodeURIComponent(url.pathname.slice(1));
    const shard = pools.shards[0]!;
    for (const t of ['raffle_activity_account', 'raffle_activity_account_day', 'raffle_activity_account_month', `user_raffle_order_${T}`, 'task']) {
      await shard.query(`ALTER TABLE ${t} SET (autovacuum_enabled = off)`);
    }
    const dataDir = (await shard.query('SHOW data_directory')).rows[0].data_directory as string;
    const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const defines = Object.entries(ceilingDefines(world.config.timeZone)).flatMap(([k, v]) => ['-D', `${k}=${v}`]);
    const lsn = async () => (await shard.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l as string;
    // What each shape must have done: every partake's order used, its task marked completed.
    const done = async () =>
      (
        await shard.query(
          `SELECT (SELECT count(*) FROM user_raffle_order_${T} WHERE order_state = 'used')::int AS used,
                  (SELECT count(*) FROM task WHERE state = 'completed')::int AS marked`,
        )
      ).rows[0] as { used: number; marked: number };
    const points: Point[] = [];
    for (const clients of CLIENTS) {
      for (let round = 1; round <= ROUNDS; round++) {
        for (const s of SHAPES) {
          const file = path.join(dir, `${s.name}.sql`);
          fs.writeFileSync(file, s.script);
          // Every point starts from the same tables: a user's orders pile up in this loop (thousands
          // each, where a real user has a few), and the lookups of the open order grow with them.
          await shard.query(`TRUNCATE user_raffle_order_${T}, task`);
          await shard.query('VACUUM ANALYZE raffle_activity_account, raffle_activity_account_day, raffle_activity_account_month');
          await shard.query('CHECKPOINT');
          const before = await done();
          const [w0, c0] = [await lsn(), childTicks(postmaster)];
          const out = execFileSync(
            'pgbench',
            ['-h', url.hostname, '-p', url.port || '5432', '-U', 'postgres', '-n', '-M', 'prepared', '-c', String(clients), '-j', '1', '-T', String(SECONDS), ...defines, '-f', file, db],
            { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
          );
          await new Promise((r) => setTimeout(r, 300)); // the backends' exit reaches the postmaster
          const [w1, c1] = [await lsn(), childTicks(postmaster)];
          const txs = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
          const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
          const partakes = txs * s.perTransaction;
          const after = await done();
          const used = after.used - before.used;
          const marked = after.marked - before.marked;
          if (used !== partakes || (s.name !== 'ceiling' && marked !== partakes)) {
            throw new Error(`${s.name}: ${partakes} partakes but ${used} orders used and ${marked} tasks marked`);
          }
          const wal = Number((await shard.query('SELECT pg_wal_lsn_diff($1, $2)::float8 AS d', [w1, w0])).rows[0].d);
          const cpuMs = (((c1 - c0) / CLK_TCK) * 1000) / partakes;
          const point = { shape: s.name, clients, round, perSec: partakes / SECONDS, cpuMs, wal: wal / partakes, failed };
          points.push(point);
          process.stdout.write(`${pointRow(point)}\n`);
        }
      }
    }
    const text = report(points);
    process.stdout.write(`\n${text}\n`);
    if (values.docs) {
      const docs = path.resolve(import.meta.dirname, '../../docs/BENCHMARKS.md');
      if (!writeBetween(docs, `<!-- set-based:g${G}:begin -->`, `<!-- set-based:g${G}:end -->`, text)) throw new Error(`docs/BENCHMARKS.md has no set-based:g${G} markers`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await pools.close();
    await world.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => (process.stderr.write(`${err?.stack ?? err}\n`), process.exit(1)),
);
