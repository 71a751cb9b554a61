import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SESSION_OPTIONS } from '../../infra/db';
import { PARTAKE_SQL } from '../../workers/partake/store';
import { RECHARGE_SQL } from '../../workers/recharge/store';
import { createTestEnv, type TestEnv } from '../support/env';

/**
 * The plans a worker's connection makes for the set-based statements on a new shard database (one
 * generic plan per statement and connection, kept for the connection's life: infra/db.ts). On a new
 * table PostgreSQL guesses a few pages, and whatever it chooses then it keeps doing as the table
 * grows: a lookup of the order tables must be an index probe, never a scan or a hashed subplan that
 * reads the whole table on every execution (docs/BENCHMARKS.md, hot path row 26).
 */
const test = suite('plans');
let world: TestEnv;
let client: pg.Client;
const SUFFIXES = ['000', '001', '002', '003'];

test.before(async () => {
  world = await createTestEnv();
  client = new pg.Client({ connectionString: world.config.shardUrls[0], options: '-c plan_cache_mode=force_generic_plan' });
  await client.connect();
});
test.after(async () => {
  await client?.end();
  await world?.cleanup();
});

async function genericPlan(name: string, text: string, types: readonly string[], on = client): Promise<string> {
  await on.query(`PREPARE ${name}(${types.join(', ')}) AS ${text}`);
  const { rows } = await on.query(`EXPLAIN EXECUTE ${name}(${types.map(() => 'NULL').join(', ')})`);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

test("a group's recharge requests are looked up in the order and refusal tables by index", async () => {
  const plan = await genericPlan('handled', RECHARGE_SQL.alreadyHandledAll(SUFFIXES), ['text[]', 'text[]', 'text[]', 'bigint[]']);
  assert.not.match(plan, /Seq Scan on raffle_activity_order/);
  assert.not.match(plan, /hashed SubPlan/);
  for (const t of SUFFIXES) {
    assert.match(plan, new RegExp(`Index (Only )?Scan using \\S+ on raffle_activity_order_${t}\\b`));
    assert.match(plan, new RegExp(`Index (Only )?Scan using \\S+ on raffle_activity_order_rejection_${t}\\b`));
  }
});

test("a group's partakes look their open and earlier orders up by index", async () => {
  const plan = await genericPlan('locked', PARTAKE_SQL.lockQuotas(SUFFIXES), ['text[]', 'text[]', 'bigint[]', 'text[]', 'text[]', 'text[]']);
  assert.not.match(plan, /Seq Scan on user_raffle_order/);
  for (const t of SUFFIXES) assert.match(plan, new RegExp(`Index (Only )?Scan using \\S+ on user_raffle_order_${t}\\b`));
});

test("with the workers' session settings a small account table is still read by index, where without them it is scanned", async () => {
  // A few thousand accounts, as a new campaign has in its first minutes: small enough that reading
  // the whole table looks cheaper to PostgreSQL than a group's index lookups.
  await client.query(`INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    SELECT 'plan-' || g, 1, 1, 1, 1, 1, 1, 1 FROM generate_series(1, 3000) g`);
  const lockQuotas = PARTAKE_SQL.lockQuotas(SUFFIXES);
  const types = ['text[]', 'text[]', 'bigint[]', 'text[]', 'text[]', 'text[]'];
  const bare = await genericPlan('bare', lockQuotas, types);
  assert.match(bare, /Seq Scan on raffle_activity_account\b/, 'the trap the setting is for: without it the accounts are scanned');
  const worker = new pg.Client({ connectionString: world.config.shardUrls[0], options: SESSION_OPTIONS });
  await worker.connect();
  try {
    const plan = await genericPlan('worker', lockQuotas, types, worker);
    assert.not.match(plan, /Seq Scan on raffle_activity_account/);
    assert.match(plan, /Index Scan using raffle_activity_account_user_id_activity_id_key on raffle_activity_account a\b/);
  } finally {
    await worker.end();
  }
});

test.run();
