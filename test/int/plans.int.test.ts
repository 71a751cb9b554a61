import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SESSION_OPTIONS } from '../../infra/db';
import { PARTAKE_SQL } from '../../workers/partake/store';
import { RECHARGE_SQL } from '../../workers/recharge/store';
import { globalStatementTexts, statementTexts, WHOLE_INDEX_READS } from '../../bench/statements';
import { createTestEnv, type TestEnv } from '../support/env';
import { genericPlan, unboundedIndexScans } from '../support/plans';

/**
 * The plans a worker's connection makes on a new shard database (one generic plan per statement and
 * connection, kept until the tables' statistics change: infra/db.ts). On a new table PostgreSQL
 * guesses a few pages, and whatever it chooses then it keeps doing as the table grows: every
 * statement must read its tables by index, never by a sequential scan or a hashed subplan that reads
 * a whole table on every execution (docs/BENCHMARKS.md, hot path row 26). Every statement's text comes
 * from the store functions (bench/statements.ts), as bench/scenarios/generic-plans.ts explains them
 * on filled tables.
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

/** The generic plan of a recorded statement, by its name (prepared as `prefix` + its index). */
const planByName = (client: pg.Client, texts: ReadonlyArray<[string, string]>, prefix: string) => (name: string) => {
  const i = texts.findIndex(([n]) => n === name);
  if (i < 0) throw new Error(`no statement ${name}`);
  return genericPlan(client, `${prefix}${i}`, texts[i]![1]);
};

test("a group's recharge requests are looked up in the order and refusal tables by index", async () => {
  const plan = await genericPlan(client, 'handled', RECHARGE_SQL.alreadyHandledAll(SUFFIXES));
  assert.not.match(plan, /Seq Scan on raffle_activity_order/);
  assert.not.match(plan, /hashed SubPlan/);
  for (const t of SUFFIXES) {
    assert.match(plan, new RegExp(`Index (Only )?Scan using \\S+ on raffle_activity_order_${t}\\b`));
    assert.match(plan, new RegExp(`Index (Only )?Scan using \\S+ on raffle_activity_order_rejection_${t}\\b`));
  }
});

test("every shard statement, planned on new tables with the workers' settings, reads its tables by index, each lookup bounded by its condition", async () => {
  const { texts, missing } = await statementTexts(SUFFIXES);
  assert.equal(missing, [], 'statements not recorded');
  const worker = new pg.Client({ connectionString: world.config.shardUrls[0], options: SESSION_OPTIONS });
  await worker.connect();
  try {
    for (const [i, [name, text]] of texts.entries()) {
      const plan = await genericPlan(worker, `s${i}`, text);
      assert.not.match(plan, /Seq Scan on (?!pg_)/, `${name}: ${plan}`);
      assert.not.match(plan, /hashed SubPlan/, `${name}: ${plan}`);
      if (!WHOLE_INDEX_READS.has(name)) assert.equal(unboundedIndexScans(plan), [], `${name}: ${plan}`);
    }
  } finally {
    await worker.end();
  }
});

test("a user's lookups read the index made for them, not another that ties with it on new tables", async () => {
  const worker = new pg.Client({ connectionString: world.config.shardUrls[0], options: SESSION_OPTIONS });
  await worker.connect();
  try {
    const planOf = planByName(worker, (await statementTexts(SUFFIXES)).texts, 'l');
    // The open order: by (user, activity), not every open order of the activity (the expiry index).
    const lock = await planOf('partake: lock and read');
    for (const t of SUFFIXES) assert.match(lock, new RegExp(`Index Scan using user_raffle_order_${t}_one_open on user_raffle_order_${t}\\b`));
    assert.not.match(lock, /_expiry/);
    // A recharge's duplicate: by (user, out_business_no), not every order of the user (the history index).
    const handled = await planOf('recharge: duplicate check');
    for (const t of SUFFIXES) assert.match(handled, new RegExp(`Index Only Scan using raffle_activity_order_${t}_user_id_out_business_no_key on raffle_activity_order_${t}\\b`));
    assert.not.match(handled, /_history/);
    // The expiry scan still has its index, bounded by activity and age.
    assert.match(await planOf('expiry: due orders'), /Index Scan using user_raffle_order_000_expiry on user_raffle_order_000\s.*\n\s*Index Cond: \(\(activity_id = \$1\) AND \(order_time <= \$2\)\)/);
  } finally {
    await worker.end();
  }
});

test('on an analysed outbox of completed tasks, every lookup of tasks by id reads the primary key, not the open tasks', async () => {
  // With statistics, the partial index of open tasks looks empty, and a statement that named the
  // open states as literals read all of it and filtered by id (found on a filled shard by
  // bench/scenarios/generic-plans.ts).
  const filler = new pg.Client({ connectionString: world.config.shardUrls[1] });
  await filler.connect();
  const worker = new pg.Client({ connectionString: world.config.shardUrls[1], options: SESSION_OPTIONS });
  await worker.connect();
  try {
    // A quiet outbox: everything published. Its statistics then say there are no open tasks, and
    // they still say so while a broker outage piles thousands up, until autovacuum analyses again.
    await filler.query(`INSERT INTO task (user_id, topic, message_id, message, state)
      SELECT 'u', 't', 'plan-' || g, '{}', 'completed' FROM generate_series(1, 20000) g`);
    await filler.query('ANALYZE task');
    const planOf = planByName(worker, (await statementTexts(SUFFIXES)).texts, 't');
    for (const name of ['relay: fail', 'relay: release', 'relay: mark completed', 'relay: claim unheld']) {
      const plan = await planOf(name);
      assert.match(plan, /task_pkey/, `${name}: ${plan}`);
      assert.not.match(plan, /task_pending_idx/, `${name}: ${plan}`);
    }
  } finally {
    await worker.end();
    await filler.end();
  }
});

test("the global database's statements, planned on new tables with the workers' settings, read by index, each lookup bounded", async () => {
  const { texts, missing } = await globalStatementTexts();
  assert.equal(missing, [], 'statements not recorded');
  const worker = new pg.Client({ connectionString: world.config.databaseUrl, options: SESSION_OPTIONS });
  await worker.connect();
  try {
    for (const [i, [name, text]] of texts.entries()) {
      const plan = await genericPlan(worker, `g${i}`, text);
      assert.not.match(plan, /Seq Scan on (?!pg_)/, `${name}: ${plan}`);
      // The activities with a TTL are read whole on purpose (a catalog, cached).
      if (name !== 'catalog: expiring activities') assert.equal(unboundedIndexScans(plan), [], `${name}: ${plan}`);
    }
    // The inbox purge deletes by address, not by a join that reads the whole inbox.
    assert.match(await planByName(worker, texts, 'p')('inbox: purge'), /Tid Scan on processed_message/);
  } finally {
    await worker.end();
  }
});

test("with the workers' session settings a small account table is still read by index, where without them it is scanned", async () => {
  // A few thousand accounts, as a new campaign has in its first minutes: small enough that reading
  // the whole table looks cheaper to PostgreSQL than a group's index lookups.
  await client.query(`INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    SELECT 'plan-' || g, 1, 1, 1, 1, 1, 1, 1 FROM generate_series(1, 3000) g`);
  const lockQuotas = PARTAKE_SQL.lockQuotas(SUFFIXES);
  const bare = await genericPlan(client, 'bare', lockQuotas);
  assert.match(bare, /Seq Scan on raffle_activity_account\b/, 'the trap the setting is for: without it the accounts are scanned');
  const worker = new pg.Client({ connectionString: world.config.shardUrls[0], options: SESSION_OPTIONS });
  await worker.connect();
  try {
    const plan = await genericPlan(worker, 'worker', lockQuotas);
    assert.not.match(plan, /Seq Scan on raffle_activity_account/);
    assert.match(plan, /Index Scan using raffle_activity_account_user_id_activity_id_key on raffle_activity_account a\b/);
  } finally {
    await worker.end();
  }
});

test.run();
