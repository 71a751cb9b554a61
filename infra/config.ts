import { isPowerOfTwo } from '../domain/router';

export type Config = Readonly<{
  databaseUrl: string;
  shardUrls: readonly string[];
  shardTableCount: number;
  /** The first broker address; `amqpUrls` has every one of them (a cluster), tried in turn. */
  amqpUrl: string;
  amqpUrls: readonly string[];
  /** AMQP heartbeat: a silent broker path is noticed within about twice this. */
  amqpHeartbeatSeconds: number;
  /** `x-quorum-initial-group-size` of the queues this service declares; 0 leaves the broker default (every node of the cluster). */
  quorumInitialGroupSize: number;
  redisUrl: string;
  /** A Redis command not answered within this is an outage (a silent path). */
  redisCommandTimeoutMs: number;
  timeZone: string;
  logLevel: string;
  /** Deliveries of one message before the broker dead-letters it (quorum `x-delivery-limit`). */
  deliveryLimit: number;
  /** Messages a consumer holds unacknowledged at once. */
  prefetch: number;
  /** Connections per database (global and each shard) per worker process. */
  dbPoolSize: number;
  /** Server statement_timeout of the workers' sessions; the client gives up 2 s later (a silent path). */
  dbStatementTimeoutMs: number;
  /** Messages a consumer holds in process per failing dependency; the others wait on the park queue. */
  outageHold: number;
  /** How long a parked message waits before it is delivered again. */
  parkMs: number;
  /** Messages of one shard database in one transaction at most (group commit); 1 turns grouping off. */
  groupMax: number;
  /** Group transactions in flight at once per shard database and worker. */
  groupLanes: number;
  /** First port of the workers' /healthz and /metrics servers; 0 turns them off. */
  metricsPort: number;
}>;

/** A wrong setting: the message names the variable, and the process stops with it. */
export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = url(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/activity', ['postgres:', 'postgresql:']);
  const shardUrls = env.SHARD_DATABASE_URLS?.trim()
    ? env.SHARD_DATABASE_URLS.split(',').map((u, i) => checkUrl(`SHARD_DATABASE_URLS (entry ${i + 1})`, u.trim(), ['postgres:', 'postgresql:']))
    : [1, 2].map((n) => withDatabaseSuffix(databaseUrl, `_${String(n).padStart(2, '0')}`));
  const shardTableCount = intSetting(env, 'SHARD_TABLE_COUNT', 4, 1, 1000);
  if (!isPowerOfTwo(shardUrls.length * shardTableCount)) {
    throw new ConfigError(`SHARD_TABLE_COUNT: ${shardUrls.length} shard databases x ${shardTableCount} tables = ${shardUrls.length * shardTableCount}, which is not a power of two`);
  }
  const timeZone = env.ACTIVITY_TIME_ZONE?.trim() || 'UTC';
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone });
  } catch {
    throw new ConfigError(`ACTIVITY_TIME_ZONE: ${JSON.stringify(timeZone)} is not an IANA time zone`);
  }
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL: ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  const dbPoolSize = intSetting(env, 'DB_POOL_SIZE', 10, 1, 1000);
  const amqpUrls = (env.AMQP_URL?.trim() || 'amqp://guest:guest@127.0.0.1:5672')
    .split(',')
    .map((u, i, all) => checkUrl(all.length > 1 ? `AMQP_URL (entry ${i + 1})` : 'AMQP_URL', u.trim(), ['amqp:', 'amqps:']));
  const groupLanes = intSetting(env, 'GROUP_COMMIT_LANES', 2, 1, 1000);
  if (groupLanes > dbPoolSize) throw new ConfigError(`GROUP_COMMIT_LANES: ${groupLanes} lanes need at least as many connections, DB_POOL_SIZE is ${dbPoolSize}`);
  return {
    databaseUrl,
    shardUrls,
    shardTableCount,
    amqpUrl: amqpUrls[0]!,
    amqpUrls,
    amqpHeartbeatSeconds: intSetting(env, 'AMQP_HEARTBEAT_SECONDS', 5, 1, 600),
    quorumInitialGroupSize: intSetting(env, 'QUORUM_INITIAL_GROUP_SIZE', 0, 0, 99),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:']),
    redisCommandTimeoutMs: intSetting(env, 'REDIS_COMMAND_TIMEOUT_MS', 2_000, 100, 600_000),
    timeZone,
    logLevel,
    deliveryLimit: intSetting(env, 'DELIVERY_LIMIT', 10, 1, 1000),
    prefetch: intSetting(env, 'PREFETCH', 32, 1, 10000),
    dbPoolSize,
    dbStatementTimeoutMs: intSetting(env, 'DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 3_600_000),
    outageHold: intSetting(env, 'OUTAGE_HOLD', 2, 0, 1000),
    parkMs: intSetting(env, 'PARK_MS', 5_000, 100, 3_600_000),
    groupMax: intSetting(env, 'GROUP_COMMIT_MAX', 16, 1, 1000),
    groupLanes,
    metricsPort: intSetting(env, 'METRICS_PORT', 9400, 0, 65000),
  };
}

/** `postgres://h/activity` + `_01` → `postgres://h/activity_01` (query string kept). */
export function withDatabaseSuffix(databaseUrl: string, suffix: string): string {
  const u = new URL(databaseUrl);
  u.pathname = `/${databaseName(databaseUrl)}${suffix}`;
  return u.toString();
}

export function databaseName(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
}

function url(env: NodeJS.ProcessEnv, name: string, fallback: string, protocols: string[]): string {
  const raw = env[name]?.trim();
  return raw ? checkUrl(name, raw, protocols) : fallback;
}

function checkUrl(name: string, raw: string, protocols: string[]): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: ${JSON.stringify(raw)} is not a URL`);
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(`${name}: expected a ${protocols.join(' or ')} URL, got ${JSON.stringify(raw)}`);
  if (protocols[0] === 'postgres:' && !u.pathname.replace(/^\//, '')) throw new ConfigError(`${name}: ${JSON.stringify(raw)} names no database`);
  return raw;
}

/** A whole-number setting from `min` to `max`; anything else is a ConfigError naming the variable. */
export function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}
