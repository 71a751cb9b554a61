import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadConfig } from '../../infra/config';
import { sql } from '../../infra/db';
import { migrate } from '../../infra/migrate';
import { openDatabases } from '../../infra/shards';
import { createTestEnv, type TestEnv } from '../support/env';
import { spawnNpm } from '../support/workers';

const t = suite<{ world: TestEnv }>('shard layout');

t.before(async (ctx) => {
  ctx.world = await createTestEnv();
});
t.after(async (ctx) => {
  await ctx.world.cleanup();
});

t('the first migrate records the layout; migrating again with the same layout is fine', async ({ world }) => {
  const dbs = openDatabases(world.config, { poolSize: 1, name: 'test' });
  try {
    const { rows } = await sql<{ database_count: number; table_count: number }>(dbs.global, 'SELECT database_count, table_count FROM shard_layout');
    assert.equal(rows, [{ database_count: 2, table_count: 4 }]);
  } finally {
    await dbs.close();
  }
  assert.equal(await migrate(world.config), { created: [], applied: [] });
});

t('migrate with another table count is refused before any shard is touched', async ({ world }) => {
  const other = loadConfig({ ...world.env, SHARD_TABLE_COUNT: '8' });
  try {
    await migrate(other);
    assert.unreachable('another layout was migrated');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /configured 2 shard databases x 8 tables, but the data was written with 2 x 4/);
  }
  const dbs = openDatabases(world.config, { poolSize: 1, name: 'test' });
  try {
    const { rows } = await sql(dbs.shards[0]!.ds, `SELECT 1 FROM pg_tables WHERE tablename = 'raffle_activity_order_004'`);
    assert.is(rows.length, 0, 'the shards got tables of the refused layout');
  } finally {
    await dbs.close();
  }
});

t('npm start with another layout stops with exit code 2 and says why, instead of restarting', async ({ world }) => {
  const svc = spawnNpm(['start'], { ...world.env, SHARD_TABLE_COUNT: '8' });
  const timer = setTimeout(() => process.kill(-svc.child.pid!, 'SIGKILL'), 60_000);
  const { code } = await svc.exited;
  clearTimeout(timer);
  assert.is(code, 2, svc.output());
  assert.match(svc.output(), /configuration error: SHARD_DATABASE_URLS \/ SHARD_TABLE_COUNT: configured 2 shard databases x 8 tables/);
});

t.run();
