import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../infra/config';
import { migrate } from '../../infra/migrate';
import { startContainers, type Services } from './containers';

const run = promisify(execFile);

/**
 * An isolated world for one test file: its own databases (global + shards), RabbitMQ vhost and
 * Redis db index, migrated; removed again by `cleanup()`. Service bases come from the environment
 * (TEST_PG_BASE, TEST_AMQP_BASE, TEST_REDIS_BASE) and default to the local services; with
 * TEST_CONTAINERS=1 they are started by testcontainers (needs a Docker engine).
 */
export type TestEnv = Readonly<{
  id: string;
  config: Config;
  /** The environment a child process (npm start, a worker) needs to join this world. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}>;

export type EnvOptions = Readonly<{
  shards?: number;
  tables?: number;
  timeZone?: string;
  /** PostgreSQL servers (`postgres://user@host:port`) the shard databases are spread over, shard i on server i mod n; default the test base. */
  shardServers?: readonly string[];
  extra?: Record<string, string>;
}>;

let services: Promise<Services> | undefined;

async function bases(): Promise<Services> {
  if (process.env.TEST_CONTAINERS === '1') return (services ??= startContainers());
  return {
    pg: (process.env.TEST_PG_BASE ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
    amqp: (process.env.TEST_AMQP_BASE ?? 'amqp://guest:guest@127.0.0.1:5672').replace(/\/+$/, ''),
    redis: (process.env.TEST_REDIS_BASE ?? 'redis://127.0.0.1:6379').replace(/\/+$/, ''),
    rabbitmqctl: async (args) => void (await run(process.env.TEST_RABBITMQCTL ?? 'rabbitmqctl', args, { timeout: 60_000 })),
  };
}

export async function createTestEnv(o: EnvOptions = {}): Promise<TestEnv> {
  const s = await bases();
  const id = `aqt_${randomBytes(4).toString('hex')}`;
  const shards = o.shards ?? 2;
  const user = decodeURIComponent(new URL(s.amqp).username || 'guest');
  await s.rabbitmqctl(['add_vhost', id]);
  await s.rabbitmqctl(['set_permissions', '-p', id, user, '.*', '.*', '.*']);
  const redisDb = await claimRedisDb(s.redis, id);
  const servers = o.shardServers?.length ? o.shardServers.map((b) => b.replace(/\/+$/, '')) : [s.pg];
  const env: Record<string, string> = {
    DATABASE_URL: `${s.pg}/${id}`,
    SHARD_DATABASE_URLS: Array.from({ length: shards }, (_, i) => `${servers[i % servers.length]}/${id}_${String(i + 1).padStart(2, '0')}`).join(','),
    SHARD_TABLE_COUNT: String(o.tables ?? 4),
    AMQP_URL: `${s.amqp}/${id}`,
    REDIS_URL: `${s.redis}/${redisDb}`,
    ACTIVITY_TIME_ZONE: o.timeZone ?? 'UTC',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    METRICS_PORT: '0',
    ...o.extra,
  };
  const config = loadConfig(env);
  await migrate(config);
  return {
    id,
    config,
    env,
    async cleanup() {
      await s.rabbitmqctl(['delete_vhost', id]).catch(() => undefined);
      // The db index this world claimed (the config may point at a Redis Cluster instead).
      const redis = new Redis(`${s.redis}/${redisDb}`, { lazyConnect: true });
      redis.on('error', () => undefined);
      await redis
        .connect()
        .then(() => redis.flushdb())
        .catch(() => undefined);
      redis.disconnect();
      // Each database on its own server: shards may live on several.
      for (const url of [config.databaseUrl, ...config.shardUrls]) {
        const admin = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
        admin.on('error', () => undefined);
        const name = decodeURIComponent(new URL(url).pathname.slice(1));
        await admin
          .connect()
          .then(() => admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`))
          .catch(() => undefined);
        await admin.end().catch(() => undefined);
      }
    },
  };
}

/** An empty Redis db among 1..15, claimed with a marker key so that parallel runs do not share one. */
async function claimRedisDb(base: string, id: string): Promise<number> {
  const redis = new Redis(`${base}/0`);
  redis.on('error', () => undefined);
  try {
    const order = Array.from({ length: 15 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    for (const db of order) {
      await redis.select(db);
      if ((await redis.dbsize()) === 0 && (await redis.set('aq:test:owner', id, 'EX', 3600, 'NX')) === 'OK') return db;
    }
    throw new Error('no empty Redis db among 1..15 for this test run');
  } finally {
    redis.disconnect();
  }
}
