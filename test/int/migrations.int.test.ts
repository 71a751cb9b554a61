import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { begin, openDatabase, closeDatabase, revertMigrations, runMigrations, sql } from '../../infra/db';
import { globalMigrations } from '../../infra/migrations/global';
import { shardMigrations } from '../../infra/migrations/shard';
import { waitFor } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';

/** Every migration's `down()` runs: all reverted, newest first, leave no table of ours; applying them again gives the same schema. */
const t = suite<{ world: TestEnv }>('migrations');

t.before(async (ctx) => {
  ctx.world = await createTestEnv({ shards: 1 });
});
t.after(async (ctx) => ctx.world?.cleanup());

/** Tables, columns and indexes of the public schema, as text (without the migrations' own table). */
async function schemaOf(url: string): Promise<string[]> {
  const db = openDatabase({ url, name: 'test:schema', scope: 'global', poolSize: 1 });
  try {
    const { rows } = await sql<{ d: string }>(
      db,
      `SELECT table_name || '.' || column_name || ' ' || data_type AS d FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
       UNION ALL
       SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
       UNION ALL
       SELECT relname || ' with ' || array_to_string(reloptions, ', ') FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL
       ORDER BY 1`,
    );
    return rows.map((r) => r.d);
  } finally {
    await closeDatabase(db);
  }
}

for (const [what, list, url] of [
  ['shard', (w: TestEnv) => shardMigrations(w.config.shardTableCount), (w: TestEnv) => w.config.shardUrls[0]!],
  ['global', () => globalMigrations, (w: TestEnv) => w.config.databaseUrl],
] as const) {
  t(`${what}: every down() reverts its up(), and up again gives the same schema`, async ({ world }) => {
    const migrations = list(world);
    const before = await schemaOf(url(world));
    assert.ok(before.length > 10, `the ${what} schema is there to begin with`);
    if (what === 'shard') assert.ok(before.includes('task with fillfactor=50'), 'half of each outbox page is kept for its completion marks');
    await revertMigrations(url(world), `test:${what}`, migrations, migrations.length);
    assert.equal(await schemaOf(url(world)), [], `no ${what} table, column or index left`);
    const applied = await runMigrations(url(world), `test:${what}`, migrations);
    assert.equal(
      applied,
      migrations.map((m) => new m().name),
    );
    assert.equal(await schemaOf(url(world)), before);
  });
}

t('the lookup-index migration runs online: writes go on while it waits for an open transaction', async ({ world }) => {
  const url = world.config.shardUrls[0]!;
  const migrations = shardMigrations(world.config.shardTableCount);
  const last = new migrations[migrations.length - 1]!().name;
  assert.is(last, 'ShardLookupIndexes1767800000000');
  const before = await schemaOf(url);
  await revertMigrations(url, 'test:online', migrations, 1);
  const db = openDatabase({ url, name: 'test:writers', scope: 'shard:1', poolSize: 2 });
  const writer = await begin(db); // a worker's transaction that has written to the table and not committed
  try {
    await sql(writer, 'LOCK TABLE user_raffle_order_000 IN ROW EXCLUSIVE MODE');
    const migrating = runMigrations(url, 'test:online', migrations);
    migrating.catch(() => undefined); // awaited below
    await waitFor(
      async () => (await sql(db, `SELECT 1 FROM pg_stat_activity WHERE application_name = 'activity-quota:test:online' AND wait_event_type = 'Lock'`)).rows.length > 0,
      10_000,
      'the migration waiting for the open transaction',
    );
    // Another write to the same table meanwhile: a blocking rebuild (DROP INDEX, CREATE INDEX) would
    // hold it behind its queued lock until the open transaction ends.
    const other = await begin(db);
    try {
      await sql(other, "SET LOCAL lock_timeout = '3s'");
      await sql(other, `UPDATE user_raffle_order_000 SET order_state = order_state WHERE user_id = 'nobody'`);
    } finally {
      await other.rollback();
    }
    await writer.commit();
    assert.equal(await migrating, [last]);
  } finally {
    await writer.rollback();
    await closeDatabase(db);
  }
  assert.equal(await schemaOf(url), before, 'the same indexes, none left with a temporary name');
});

t('the lookup-index migration finishes a run that stopped half-way', async ({ world }) => {
  const url = world.config.shardUrls[0]!;
  const migrations = shardMigrations(world.config.shardTableCount);
  const before = await schemaOf(url);
  await revertMigrations(url, 'test:resume', migrations, 1);
  const db = openDatabase({ url, name: 'test:half-way', scope: 'shard:1', poolSize: 1 });
  try {
    // What a stopped run can leave: a temporary index (here on other columns, so that keeping it
    // instead of building it again would show), and an old index dropped before its replacement was renamed.
    await sql(db, 'CREATE INDEX user_raffle_order_000_expiry_new ON user_raffle_order_000 (user_id)');
    await sql(db, 'DROP INDEX raffle_activity_order_001_history');
  } finally {
    await closeDatabase(db);
  }
  assert.equal(await runMigrations(url, 'test:resume', migrations), ['ShardLookupIndexes1767800000000']);
  assert.equal(await schemaOf(url), before);
});

t.run();
