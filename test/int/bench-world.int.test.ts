import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openPools, preloadCeilingAccounts, removeCeilingRows, type Pools } from '../../bench/world';
import { ceilingUser } from '../../bench/scenarios/ceiling-users';
import { committedCounter } from '../../bench/scenarios/recharge';
import { PARTAKE_SQL } from '../../workers/partake/store';
import { createTestEnv, type TestEnv } from '../support/env';
import { genericPlan } from '../support/plans';

/**
 * The bench's clean-up after the database ceiling (bench/world.ts `removeCeilingRows`): what the
 * pipeline measured after it finds. Hot path row 25 of docs/BENCHMARKS.md: a `DELETE` and
 * `VACUUM ANALYZE` recorded the order and task tables as empty, and the pipeline's connections then
 * planned their lookups as sequential scans of tables that grew by thousands of rows a second.
 */
const test = suite('bench world');
let world: TestEnv;
let pools: Pools;

test.before(async () => {
  world = await createTestEnv();
  pools = openPools(world.config);
});
test.after(async () => {
  await pools?.close();
  await world?.cleanup();
});

const ORDER = `INSERT INTO user_raffle_order_000 (order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state, create_time, update_time)
  VALUES ($1, $2, 1, 'a', 1, now(), 'used', now(), now())`;
const TASK = `INSERT INTO task (user_id, topic, message_id, message, state) VALUES ($1, 'raffle-order.created', $2, '{}'::jsonb, 'completed')`;

test('removes the ceiling rows, keeps the others, and leaves no lookup planned as a scan of a table recorded empty', async () => {
  await preloadCeilingAccounts(pools, world.config, 3);
  const [one, two] = pools.shards;
  for (const pool of pools.shards) {
    for (let k = 0; k < 50; k++) {
      await pool.query(ORDER, [`c${k}`, ceilingUser('partake', 0, k % 3)]);
      await pool.query(TASK, [ceilingUser('partake', 0, k % 3), `m${k}`]);
    }
  }
  // A pipeline user's order in the first shard: that table is not emptied, only its ceiling rows go.
  await one!.query(ORDER, ['keep-1', 'bench-p0-0']);

  await removeCeilingRows(pools, world.config);

  const count = async (pool: pg.Pool, table: string) => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  assert.is(await count(one!, 'user_raffle_order_000'), 1, 'the pipeline row stays');
  assert.is(await count(two!, 'user_raffle_order_000'), 0);
  assert.is(await count(one!, 'task'), 0);
  assert.is(await count(two!, 'task'), 0);
  for (const pool of pools.shards) {
    const { rows } = await pool.query(`SELECT relname, reltuples FROM pg_class WHERE relname = 'task' OR relname LIKE 'user_raffle_order\\_0__' OR relname LIKE 'raffle_activity_order\\_0__'`);
    for (const r of rows) assert.ok(Number(r.reltuples) !== 0, `${r.relname} recorded as empty (reltuples 0)`);
  }

  // What a worker's connection plans (infra/db.ts: one generic plan per statement and connection).
  const client = new pg.Client({ connectionString: world.config.shardUrls[1], options: '-c plan_cache_mode=force_generic_plan' });
  await client.connect();
  try {
    const plan = await genericPlan(client, 'lq', PARTAKE_SQL.lockQuotas(['000', '001', '002', '003']));
    assert.not.match(plan, /Seq Scan on user_raffle_order/);
    assert.match(plan, /Index Scan using user_raffle_order_000_/);
  } finally {
    await client.end();
  }
});

test("the recharge run's count of committed outcomes counts a row that commits after a later id, and each row once", async () => {
  const prefix = 'bench-t-rc-';
  const outcome = (no: string) => JSON.stringify({ data: { outBusinessNo: `${prefix}${no}` } });
  const insert = `INSERT INTO task (user_id, topic, message_id, message, state) VALUES ('u', $1, $2, $3::jsonb, 'create')`;
  const count = committedCounter(pools, prefix);
  const early = new pg.Client({ connectionString: world.config.shardUrls[0] });
  await early.connect();
  try {
    await early.query('BEGIN');
    await early.query(insert, ['recharge.completed', 'early', outcome('1')]); // the lower id, committed last
    await pools.shards[0]!.query(insert, ['recharge.rejected', 'late', outcome('2')]);
    await pools.shards[0]!.query(insert, ['raffle-order.created', 'other', outcome('3')]);
    await pools.shards[1]!.query(insert, ['recharge.completed', 'elsewhere', JSON.stringify({ data: { outBusinessNo: 'another-run-1' } })]);
    assert.is(await count(), 1);
    await early.query('COMMIT');
    assert.is(await count(), 2);
    assert.is(await count(), 2, 'each row once');
  } finally {
    await early.end();
  }
});

test.run();
