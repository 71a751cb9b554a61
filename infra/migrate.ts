import pg from 'pg';
import type { Config } from './config';
import { databaseName } from './config';
import { closeDatabase, openDatabase, runMigrations } from './db';
import { layoutOf, recordLayout } from './layout';
import { log } from './log';
import { globalMigrations } from './migrations/global';
import { shardMigrations } from './migrations/shard';

/** Creates the global and shard databases that are missing, then runs pending migrations on each; the first run records the shard layout, later ones refuse another. */
export async function migrate(config: Config): Promise<{ created: string[]; applied: string[] }> {
  const created: string[] = [];
  for (const url of [config.databaseUrl, ...config.shardUrls]) {
    if (await createDatabaseIfMissing(url)) created.push(databaseName(url));
  }
  const applied: string[] = [];
  for (const name of await runMigrations(config.databaseUrl, 'migrate:global', globalMigrations)) applied.push(`global: ${name}`);
  // Before any shard is touched: a different layout than the data was written with is refused.
  const global = openDatabase({ url: config.databaseUrl, name: 'migrate:layout', scope: 'global', poolSize: 1 });
  try {
    await recordLayout(global, layoutOf(config));
  } finally {
    await closeDatabase(global);
  }
  for (const [i, url] of config.shardUrls.entries()) {
    for (const name of await runMigrations(url, `migrate:shard${i + 1}`, shardMigrations(config.shardTableCount))) applied.push(`shard ${i + 1}: ${name}`);
  }
  return { created, applied };
}

async function createDatabaseIfMissing(url: string): Promise<boolean> {
  const name = databaseName(url);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), application_name: 'activity-quota:migrate' });
  client.on('error', (err) => log.warn({ err }, 'admin connection error'));
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } catch (err) {
      // Two migrators at once: the other one created it first.
      if ((err as { code?: string }).code === '42P04') return false;
      throw err;
    }
    return true;
  } finally {
    await client.end();
  }
}
