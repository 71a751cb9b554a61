import type { DataSource } from 'typeorm';
import { route, splitSuffix } from '../domain/router';
import type { Config } from './config';
import { openDatabase } from './db';
import { groupCommitter, type GroupCommitter } from './group-commit';
import { log as rootLog, type Logger } from './log';
import { globalMigrations } from './migrations/global';
import { shardMigrations } from './migrations/shard';

/** A shard database: its pool, and the group committer that shares transactions among messages. */
export type Shard = Readonly<{ shard: number; ds: DataSource; group: GroupCommitter }>;
/** Where one user's rows live: the shard database and the split-table suffix (`000`…). */
export type UserShard = Shard & Readonly<{ suffix: string }>;

export type Databases = Readonly<{
  global: DataSource;
  shards: readonly Shard[];
  tableCount: number;
  forUser(userId: string): UserShard;
  /** Every split-table suffix of one shard database, `000` … `{T-1}`. */
  suffixes: readonly string[];
  close(): Promise<void>;
}>;

export async function openDatabases(config: Config, o: { poolSize?: number; name?: string; log?: Logger } = {}): Promise<Databases> {
  const name = o.name ?? 'app';
  const lanes = Math.min(config.groupLanes, o.poolSize ?? config.dbPoolSize);
  const log = o.log ?? rootLog;
  const global = await openDatabase({ url: config.databaseUrl, name: `${name}:global`, poolSize: o.poolSize, migrations: globalMigrations });
  const shards: Shard[] = [];
  try {
    for (const [i, url] of config.shardUrls.entries()) {
      const ds = await openDatabase({ url, name: `${name}:shard${i + 1}`, poolSize: o.poolSize, migrations: shardMigrations(config.shardTableCount) });
      shards.push({ shard: i + 1, ds, group: groupCommitter(ds, { max: config.groupMax, lanes }, log.child({ shard: i + 1 })) });
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
      return { ...shards[r.shard - 1]!, suffix: r.suffix };
    },
    async close() {
      await Promise.allSettled([global, ...shards.map((s) => s.ds)].map((ds) => ds.destroy()));
    },
  };
}
