/**
 * The generic plans of the shard statements on production-sized tables (docs/BENCHMARKS.md, hot
 * path step 24): every pooled connection plans a prepared statement once (`plan_cache_mode =
 * force_generic_plan`), so that plan must find rows by index whatever its parameters: the
 * set-based statements, the lone units' (partake, use, cancel, recharge) and the jobs' (expiry,
 * history, relay claims and marks, retention, the outbox gauges).
 * `npx tsx bench/scenarios/generic-plans.ts [--rows 400000]`: a world of its own (one shard
 * database, four split tables, removed after), `--rows` recharge, raffle and refusal orders per
 * split table and 2.5 × as many accounts with day and month rows, analysed; each statement's text
 * (taken from the store functions themselves, through a transaction that records instead of
 * sending) is prepared before the fill, on the empty tables, and explained as a generic plan after
 * it. Prints the plans' scans; exit 1 if a statement reads one of those tables with a sequential
 * scan. (On empty tables the workers' `enable_seqscan = off` keeps the plans off sequential scans
 * too: test/int/plans.int.test.ts checks every statement there.)
 */
import { parseArgs } from 'node:util';
import { closeDatabase, openDatabase } from '../../infra/db';
import { createTestEnv } from '../../test/support/env';
import { unboundedIndexScans } from '../../test/support/plans';
import { statementTexts, WHOLE_INDEX_READS } from '../statements';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '400000' } } });
const ROWS = Number(values.rows);
const SUFFIXES = ['000', '001', '002', '003'];

const perSuffix = (t: string) => `
  INSERT INTO user_raffle_order_${t} (user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state, request_id)
    SELECT 'user-' || (g % ${ROWS * 0.6}) || '-${t}', 100301, 'a', 100006, '${t}' || g, now() - g * interval '1 second',
           CASE WHEN g % 100 = 0 AND g <= ${ROWS * 0.6} THEN 'create' ELSE 'used' END, md5(g::text)
    FROM generate_series(1, ${ROWS}) g;
  INSERT INTO raffle_activity_order_${t} (user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time, total_count, day_count, month_count, pay_type, pay_amount, state, out_business_no)
    SELECT 'user-' || (g % ${ROWS * 0.6}) || '-${t}', 9011, 100301, 'a', 100006, 'r${t}' || g, now(), 10, 3, 6, 'credit', 0, 'completed', 'ob-' || g FROM generate_series(1, ${ROWS}) g;
  INSERT INTO raffle_activity_order_rejection_${t} (user_id, sku, out_business_no, code, info, message_id)
    SELECT 'user-' || g || '-${t}', 9011, 'rj-' || g, 'ERR_BIZ_001', 'x', 'm${t}-' || g FROM generate_series(1, ${ROWS}) g;`;

const fill = `
  INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    SELECT 'user-' || g, 100301, 100, 50, 10, 5, 30, 15 FROM generate_series(1, ${ROWS * 2.5}) g;
  INSERT INTO raffle_activity_account_day (user_id, activity_id, day, day_count, day_count_surplus)
    SELECT 'user-' || g, 100301, '2026-12-0' || (g % 9 + 1), 10, 5 FROM generate_series(1, ${ROWS * 2.5}) g;
  INSERT INTO raffle_activity_account_month (user_id, activity_id, month, month_count, month_count_surplus)
    SELECT 'user-' || g, 100301, '2026-' || lpad((g % 12 + 1)::text, 2, '0'), 30, 15 FROM generate_series(1, ${ROWS * 2.5}) g;
  ${SUFFIXES.map(perSuffix).join('\n')}
  INSERT INTO task (user_id, topic, message_id, message, state)
    SELECT 'user-' || g, 'partake.created', 'm-' || g, '{}', 'completed' FROM generate_series(1, ${ROWS * 2.5}) g;`;

async function main(): Promise<number> {
  const world = await createTestEnv({ shards: 1, tables: SUFFIXES.length });
  // Pooled connections as the workers open them (plan_cache_mode = force_generic_plan); plain
  // simple-protocol queries, so that each PREPARE and its EXPLAIN run on one session. The statements
  // are prepared while the tables are still empty, as on a new deployment, and explained after the
  // tables were filled and analysed from another connection: the ANALYZE must have made the cached
  // plans go stale, or they would keep the empty tables' sequential scans.
  const db = openDatabase({ url: world.config.shardUrls[0]!, name: 'plans', scope: 'shard:1', poolSize: 2, statementTimeoutMs: 0 });
  const [client, filler] = [await db.pool.connect(), await db.pool.connect()];
  let bad = 0;
  try {
    const { texts, missing } = await statementTexts(SUFFIXES);
    for (const n of missing) console.log(`not recorded (not checked): ${n}`);
    bad += missing.length;
    const params = (text: string) => Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
    const args = (text: string) => (params(text) ? `(${Array(params(text)).fill('NULL').join(', ')})` : '');
    const explain = async (i: number, text: string) => (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) EXECUTE plan_${i}${args(text)}`)).rows.map((r) => r['QUERY PLAN'].trim());
    let before = 0;
    for (const [i, [, text]] of texts.entries()) {
      await client.query(`PREPARE plan_${i} AS ${text}`);
      before += (await explain(i, text)).filter((l) => l.includes('Seq Scan')).length;
    }
    console.log(`prepared on empty tables: ${before} sequential scans in the first plans${before ? '' : ' (so the re-plan after ANALYZE is not shown)'}`);
    console.log(`filling: ${ROWS} orders, raffle orders and refusals per split table, ${ROWS * 2.5} accounts, day and month rows, tasks`);
    await filler.query(fill);
    await filler.query('ANALYZE');
    for (const [i, [name, text]] of texts.entries()) {
      const plan = await explain(i, text);
      const scans = plan.filter((l) => /Scan (Backward )?(using|on)|Seq Scan/.test(l) && !/^(->\s+)?(CTE|Function|Subquery) Scan/.test(l));
      const seq = scans.filter((l) => l.includes('Seq Scan'));
      const whole = WHOLE_INDEX_READS.has(name) ? [] : unboundedIndexScans(plan.join('\n'));
      bad += seq.length + whole.length;
      console.log(`\n${name}: ${scans.length} table scans, ${seq.length} sequential, ${whole.length} whole index reads`);
      for (const l of scans) console.log(`  ${l.replace(/^->\s+/, '')}`);
    }
  } finally {
    client.release();
    filler.release();
    await closeDatabase(db);
    await world.cleanup();
  }
  console.log(
    bad
      ? `\n${bad} statement(s) not recorded, sequential scan(s) or whole index read(s) of a filled table in a generic plan`
      : '\nevery table read by index, each lookup bounded by its condition, in every generic plan',
  );
  return bad ? 1 : 0;
}

main().then((code) => process.exit(code));
