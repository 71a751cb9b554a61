import { ConfigError, type Config } from './config';
import { sql, type Db } from './db';

/**
 * The shard layout (shard databases x split tables) decides where every user's rows live
 * (domain/router.ts). Changing it under existing data would route users to empty tables, so the
 * first migrate records it and every later migrate and worker start compares.
 */
export type Layout = Readonly<{ databaseCount: number; tableCount: number }>;

export const layoutOf = (c: Config): Layout => ({ databaseCount: c.shardUrls.length, tableCount: c.shardTableCount });

/** Records `layout` if none is recorded yet; a different recorded one is a ConfigError. */
export async function recordLayout(global: Db, layout: Layout): Promise<void> {
  await sql(global, 'INSERT INTO shard_layout (id, database_count, table_count) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING', [layout.databaseCount, layout.tableCount]);
  await checkLayout(global, layout);
}

/** A ConfigError when the recorded layout differs from `layout`; nothing recorded (not migrated yet) passes. */
export async function checkLayout(global: Db, layout: Layout): Promise<void> {
  const { rows } = await sql<{ database_count: number; table_count: number }>(global, 'SELECT database_count, table_count FROM shard_layout WHERE id = 1');
  const recorded = rows[0];
  if (!recorded || (recorded.database_count === layout.databaseCount && recorded.table_count === layout.tableCount)) return;
  throw new ConfigError(
    `SHARD_DATABASE_URLS / SHARD_TABLE_COUNT: configured ${layout.databaseCount} shard databases x ${layout.tableCount} tables, ` +
      `but the data was written with ${recorded.database_count} x ${recorded.table_count}; users would be routed to the wrong tables (resharding is not supported)`,
  );
}
