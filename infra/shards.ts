import type { DataSource } from 'typeorm';
import { route, splitSuffix } from '../domain/router';
import type { Config } from './config';
import { openDatabase } from './db';
import { globalMigrations } from './migrations/global';
import { shardMigrations } from './migrations/shard';

export type Shard = Readonly<{ shard: number; ds: DataSource }>;
/** Where one user's rows live: the shard's DataSource and the split-table suffix (`000`…). */
export type UserShard = Readonly<{ shard: number; ds: DataSource; suffix: string }>;

export type Databases = Readonly<{
  global: DataSource;
  shards: readonly Shard[];
  tableCount: number;
  forUser(userId: string): UserShard;
  /** Every split-table suffix of one shard database, `000` … `{T-1}`. */
  suffixes: readonly string[];
  close(): Promise<void>;
}>;

export async function openDatabases(config: Config, o: { poolSize?: number; name?: string } = {}): Promise<Databases> {
  const name = o.name ?? 'app';
  const global = await openDatabase({ url: config.databaseUrl, name: `${name}:global`, poolSize: o.poolSize, migrations: globalMigrations });
  const shards: Shard[] = [];
  try {
    for (const [i, url] of config.shardUrls.entries()) {
      shards.push({ shard: i + 1, ds: await openDatabase({ url, name: `${name}:shard${i + 1}`, poolSize: o.poolSize, migrations: shardMigrations(config.shardTableCount) }) });
    }
  } catch (err) {
    await Promise.allSettled([global, ...shards.map((s) => s.ds)].map((ds) => ds.destroy()));
    throw err;
  }
  const tableCount = config.shardTableCount;
  return {
    global,
    shards,
    tableCount,
    suffixes: Array.from({ length: tableCount }, (_, t) => splitSuffix(t)),
    forUser(userId) {
      const r = route(userId, shards.length, tableCount);
      return { shard: r.shard, ds: shards[r.shard - 1]!.ds, suffix: r.suffix };
    },
    async close() {
      await Promise.allSettled([global, ...shards.map((s) => s.ds)].map((ds) => ds.destroy()));
    },
  };
}
