import { route, splitSuffix } from '../domain/router';
import type { Config } from './config';
import { closeDatabase, openDatabase, type Db } from './db';
import { groupCommitter, type GroupCommitter } from './group-commit';
import { log as rootLog, type Logger } from './log';

/**
 * A shard database: its pool, the group committer that shares transactions among messages, and its
 * split-table suffixes (`000` … `{T-1}`), which a set-based statement names all of.
 */
export type Shard = Readonly<{ shard: number; ds: Db; group: GroupCommitter; suffixes: readonly string[] }>;
/** Where one user's rows live: the shard database and the split-table suffix (`000`…). */
export type UserShard = Shard & Readonly<{ suffix: string }>;

export type Databases = Readonly<{
  global: Db;
  shards: readonly Shard[];
  tableCount: number;
  forUser(userId: string): UserShard;
  /** Every split-table suffix of one shard database, `000` … `{T-1}`. */
  suffixes: readonly string[];
  close(): Promise<void>;
}>;

/**
 * Pools for the global and every shard database. Nothing connects yet: a database that is down
 * fails only the calls that need it (its circuit opens), so a worker starts and serves the others.
 */
export function openDatabases(config: Config, o: { poolSize?: number; name?: string; log?: Logger; statementTimeoutMs?: number } = {}): Databases {
  const name = o.name ?? 'app';
  const poolSize = o.poolSize ?? config.dbPoolSize;
  const lanes = Math.min(config.groupLanes, poolSize);
  const log = o.log ?? rootLog;
  const statementTimeoutMs = o.statementTimeoutMs ?? config.dbStatementTimeoutMs;
  const connectTimeoutMs = config.dbConnectTimeoutMs;
  const global = openDatabase({ url: config.databaseUrl, name: `${name}:global`, scope: 'global', poolSize, statementTimeoutMs, connectTimeoutMs });
  const tableCount = config.shardTableCount;
  const suffixes = Array.from({ length: tableCount }, (_, t) => splitSuffix(t));
  const shards: Shard[] = config.shardUrls.map((url, i) => {
    const ds = openDatabase({ url, name: `${name}:shard${i + 1}`, scope: `shard:${i + 1}`, poolSize, statementTimeoutMs, connectTimeoutMs });
    return { shard: i + 1, ds, group: groupCommitter(ds, { max: config.groupMax, lanes, stallMs: config.groupStallMs }, log.child({ shard: i + 1 })), suffixes };
  });
  return {
    global,
    shards,
    tableCount,
    suffixes,
    forUser(userId) {
      const r = route(userId, shards.length, tableCount);
      return { ...shards[r.shard - 1]!, suffix: r.suffix };
    },
    async close() {
      await Promise.allSettled([global, ...shards.map((s) => s.ds)].map(closeDatabase));
    },
  };
}
