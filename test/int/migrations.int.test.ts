import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabase, closeDatabase, revertMigrations, runMigrations, sql } from '../../infra/db';
import { globalMigrations } from '../../infra/migrations/global';
import { shardMigrations } from '../../infra/migrations/shard';
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

t.run();
