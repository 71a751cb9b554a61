import { isPowerOfTwo } from '../domain/router';
import { ConfigError, checkUrl, clusterSetting, intSetting, urlSetting, type RedisClusterSetting } from './config-parse';
import { maskUrl, withDatabaseSuffix } from './urls';

export { databaseName, maskUrl, withDatabaseSuffix } from './urls';
export { ConfigError, intSetting, type RedisClusterSetting } from './config-parse';

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
  /** Redis Cluster seed nodes (`REDIS_CLUSTER_NODES`); when set, the service talks to the cluster and ignores `redisUrl`. */
  redisCluster: RedisClusterSetting | undefined;
  /** Prepended to every Redis key (`REDIS_KEY_PREFIX`): several deployments can share one Redis or one cluster. */
  redisKeyPrefix: string;
  /** Replicas that must hold a stock take before its order commits (`WAIT`; 0 = don't wait), and how long a take waits for them before it is given back and retried. */
  redisWaitReplicas: number;
  redisWaitTimeoutMs: number;
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
  /** Server statement_timeout of the workers' sessions, the client gives up 2 s later (a silent path); and how long a new connection (TCP, startup, auth) or a wait for a pooled one may take. */
  dbStatementTimeoutMs: number;
  dbConnectTimeoutMs: number;
  /** Messages a consumer holds in process per failing dependency; the others wait on the park queue. */
  outageHold: number;
  /** How long a parked message waits before it is delivered again. */
  parkMs: number;
  /** Messages of one shard database in one transaction at most (group commit); 1 turns grouping off. */
  groupMax: number;
  /** Group transactions in flight per shard database and worker; all stuck `groupStallMs` (0 = never): waiting units fail as an outage. */
  groupLanes: number;
  groupStallMs: number;
  /** First port of the workers' /healthz and /metrics servers; 0 turns them off. */
  metricsPort: number;
  /** How long `npm run call` (and the client by default) waits for a reply. */
  callTimeoutMs: number;
  /** The outbox relay (`OUTBOX_*`). */
  outbox: OutboxSettings;
  /** The orphaned-reservation reaper of the recharge workers: how often, and from which age (`STOCK_REAPER_*`). */
  stockReaper: Readonly<{ everyMs: number; minAgeSeconds: number }>;
  /** Where spans go (OTLP/HTTP, JSON; `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`; unset = none recorded) and their service (`OTEL_SERVICE_NAME`, default `activity-quota-<worker>`). */
  otlpTracesUrl: string | undefined;
  otelServiceName: string | undefined;
}>;

export type OutboxSettings = Readonly<{
  /** Failed publishes before a task is `dead`. */
  maxAttempts: number;
  /** Wait after failure n: backoffMs * 2^(n-1), capped at backoffMaxMs. */
  backoffMs: number;
  backoffMaxMs: number;
  /** How long a claim keeps other relays off a task (a crashed relay's claim expires). */
  leaseMs: number;
  /** Tasks claimed per round and shard. */
  batchSize: number;
  /** Completed tasks (and inbox rows) older than this are deleted by the task-compensation worker (`RETENTION_SECONDS`, default 7 days). */
  retentionSeconds: number;
}>;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const rawLogLevel = (env: NodeJS.ProcessEnv): string => env.LOG_LEVEL?.trim() || 'info';

/** The root logger's level, needed before the configuration is read: a wrong LOG_LEVEL means info until loadConfig reports it. */
export function initialLogLevel(env: NodeJS.ProcessEnv = process.env): string {
  const level = rawLogLevel(env);
  return LOG_LEVELS.includes(level) ? level : 'info';
}

/**
 * Switches that are not settings: `AQ_PROBATION=1` is set by the supervisor on a worker it restarts
 * after a crash; `AQ_CRASH_AT` / `AQ_CRASH_MARKER` (infra/crash.ts) and `AQ_MUTATION` (infra/mutation.ts) by the fault suite.
 */
export function processSwitches(env: NodeJS.ProcessEnv = process.env): Readonly<{ probation: boolean; crashAt: string | undefined; crashMarker: string | undefined; mutation: string | undefined }> {
  const opt = (v: string | undefined) => v?.trim() || undefined;
  return { probation: env.AQ_PROBATION === '1', crashAt: opt(env.AQ_CRASH_AT), crashMarker: opt(env.AQ_CRASH_MARKER), mutation: opt(env.AQ_MUTATION) };
}

/** The environment of a worker process the supervisor starts: its own, plus the probation switch after a crash. */
export function workerEnv(probation: boolean, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return probation ? { ...env, AQ_PROBATION: '1' } : env;
}

/** The broker the typed client connects to when not told: AMQP_URL as it is, else the local default. */
export function clientAmqpUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
}

/** Reads settings, remembering every wrong one (with a fallback so the others are still read). */
function reader(env: NodeJS.ProcessEnv) {
  const problems: string[] = [];
  const get = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return fallback;
    }
  };
  return {
    problems,
    get,
    int: (name: string, fallback: number, min: number, max: number) => get(() => intSetting(env, name, fallback, min, max), fallback),
    url: (name: string, fallback: string, protocols: string[]) => get(() => urlSetting(env, name, fallback, protocols), fallback),
    check: (fn: () => void) => get(fn, undefined),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const r = reader(env);
  const { databaseUrl, shardUrls, shardTableCount } = readDatabases(r, env);
  const timeZone = readTimeZone(r, env);
  const logLevel = rawLogLevel(env);
  if (!LOG_LEVELS.includes(logLevel)) r.problems.push(`LOG_LEVEL: ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  const dbPoolSize = r.int('DB_POOL_SIZE', 10, 1, 1000);
  const amqpUrls = (env.AMQP_URL?.trim() || 'amqp://guest:guest@127.0.0.1:5672')
    .split(',')
    .map((u, i, all) => r.get(() => checkUrl(all.length > 1 ? `AMQP_URL (entry ${i + 1})` : 'AMQP_URL', u.trim(), ['amqp:', 'amqps:']), u.trim()));
  const groupLanes = r.int('GROUP_COMMIT_LANES', 2, 1, 1000);
  if (groupLanes > dbPoolSize) r.problems.push(`GROUP_COMMIT_LANES: ${groupLanes} lanes need at least as many connections, DB_POOL_SIZE is ${dbPoolSize}`);
  const redisCluster = r.get(() => clusterSetting(env), undefined);
  if (redisCluster && env.REDIS_URL?.trim()) r.problems.push('REDIS_CLUSTER_NODES: set either REDIS_CLUSTER_NODES (a cluster) or REDIS_URL (one Redis), not both');
  const redisKeyPrefix = env.REDIS_KEY_PREFIX?.trim() ?? '';
  if (!/^[A-Za-z0-9:_.-]*$/.test(redisKeyPrefix)) r.problems.push(`REDIS_KEY_PREFIX: ${JSON.stringify(redisKeyPrefix)} may hold only letters, digits and : _ . - (no hash-tag braces)`);
  const config: Config = {
    databaseUrl,
    shardUrls,
    shardTableCount,
    amqpUrl: amqpUrls[0]!,
    amqpUrls,
    amqpHeartbeatSeconds: r.int('AMQP_HEARTBEAT_SECONDS', 5, 1, 600),
    quorumInitialGroupSize: r.int('QUORUM_INITIAL_GROUP_SIZE', 0, 0, 99),
    redisUrl: r.url('REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:']),
    redisCluster,
    redisKeyPrefix,
    // A cluster master may fail over to its replica: a take only counts once a replica holds it (docs/DESIGN.md).
    redisWaitReplicas: r.int('REDIS_WAIT_REPLICAS', redisCluster ? 1 : 0, 0, 16),
    redisWaitTimeoutMs: r.int('REDIS_WAIT_TIMEOUT_MS', 1_000, 1, 60_000),
    redisCommandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 2_000, 100, 600_000),
    timeZone,
    logLevel,
    deliveryLimit: r.int('DELIVERY_LIMIT', 10, 1, 1000),
    prefetch: r.int('PREFETCH', 32, 1, 10000),
    dbPoolSize,
    dbStatementTimeoutMs: r.int('DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 3_600_000),
    dbConnectTimeoutMs: r.int('DB_CONNECT_TIMEOUT_MS', 5_000, 100, 600_000),
    outageHold: r.int('OUTAGE_HOLD', 2, 0, 1000),
    parkMs: r.int('PARK_MS', 5_000, 100, 3_600_000),
    groupMax: r.int('GROUP_COMMIT_MAX', 16, 1, 1000),
    groupLanes,
    groupStallMs: 0,
    metricsPort: r.int('METRICS_PORT', 9400, 0, 65000),
    callTimeoutMs: r.int('CALL_TIMEOUT_MS', 10_000, 1, 3_600_000),
    outbox: readOutbox(r),
    stockReaper: { everyMs: r.int('STOCK_REAPER_MS', 5_000, 50, 3_600_000), minAgeSeconds: r.int('STOCK_REAPER_AGE_SECONDS', 15, 0, 86_400) },
    ...r.get(() => readTelemetry(env), { otlpTracesUrl: undefined, otelServiceName: undefined }),
  };
  const stall = readStall(r, config);
  if (r.problems.length) throw new ConfigError(r.problems);
  return { ...config, groupStallMs: stall };
}

/**
 * GROUP_COMMIT_STALL_MS: a stock take inside a shard transaction may wait for Redis up to its command
 * timeout (and a replica's WAIT), so a stall bound must be longer than that, or a Redis outage
 * would pass for the shard's. Default: that wait + 1 s.
 */
function readStall(r: Reader, c: Config): number {
  const redisWait = c.redisCommandTimeoutMs + (c.redisWaitReplicas ? c.redisWaitTimeoutMs : 0);
  const ms = r.int('GROUP_COMMIT_STALL_MS', redisWait + 1_000, 0, 3_600_000);
  if (ms && ms <= redisWait)
    r.problems.push(
      `GROUP_COMMIT_STALL_MS: ${ms} must be 0 or more than the ${redisWait} ms a stock take may wait for Redis (REDIS_COMMAND_TIMEOUT_MS${c.redisWaitReplicas ? ' + REDIS_WAIT_TIMEOUT_MS' : ''})`,
    );
  return ms;
}

type Reader = ReturnType<typeof reader>;

/** The global database and the shard databases; shards x split tables must be a power of two. */
function readDatabases(r: Reader, env: NodeJS.ProcessEnv): Pick<Config, 'databaseUrl' | 'shardUrls' | 'shardTableCount'> {
  const databaseUrl = r.url('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/activity', ['postgres:', 'postgresql:']);
  const shardUrls = env.SHARD_DATABASE_URLS?.trim()
    ? env.SHARD_DATABASE_URLS.split(',').map((u, i) => r.get(() => checkUrl(`SHARD_DATABASE_URLS (entry ${i + 1})`, u.trim(), ['postgres:', 'postgresql:']), u.trim()))
    : [1, 2].map((n) => withDatabaseSuffix(databaseUrl, `_${String(n).padStart(2, '0')}`));
  const shardTableCount = r.int('SHARD_TABLE_COUNT', 4, 1, 1000);
  if (!isPowerOfTwo(shardUrls.length * shardTableCount)) {
    r.problems.push(`SHARD_TABLE_COUNT: ${shardUrls.length} shard databases x ${shardTableCount} tables = ${shardUrls.length * shardTableCount}, which is not a power of two`);
  }
  return { databaseUrl, shardUrls, shardTableCount };
}

function readTimeZone(r: Reader, env: NodeJS.ProcessEnv): string {
  const timeZone = env.ACTIVITY_TIME_ZONE?.trim() || 'UTC';
  r.check(() => {
    try {
      new Intl.DateTimeFormat('en-CA', { timeZone });
    } catch {
      throw new ConfigError(`ACTIVITY_TIME_ZONE: ${JSON.stringify(timeZone)} is not an IANA time zone`);
    }
  });
  return timeZone;
}

function readOutbox(r: Reader): OutboxSettings {
  return {
    maxAttempts: r.int('OUTBOX_MAX_ATTEMPTS', 10, 1, 1000),
    backoffMs: r.int('OUTBOX_BACKOFF_MS', 1_000, 10, 3_600_000),
    backoffMaxMs: r.int('OUTBOX_BACKOFF_MAX_MS', 300_000, 10, 86_400_000),
    // Longer than a publish can take (10 s confirm timeout) so that a live claim never expires.
    leaseMs: r.int('OUTBOX_LEASE_MS', 30_000, 5_000, 3_600_000),
    batchSize: r.int('OUTBOX_BATCH', 100, 1, 10_000),
    retentionSeconds: r.int('RETENTION_SECONDS', 7 * 86_400, 10, 10 * 365 * 86_400),
  };
}

/** Every setting as the service uses it, URLs with their passwords masked: what `npm run config -- check` prints. */
export function effectiveSettings(c: Config): Record<string, unknown> {
  const maskAll = (urls: readonly string[]) => urls.map(maskUrl);
  return {
    ...c,
    databaseUrl: maskUrl(c.databaseUrl),
    shardUrls: maskAll(c.shardUrls),
    amqpUrl: maskUrl(c.amqpUrl),
    amqpUrls: maskAll(c.amqpUrls),
    redisUrl: maskUrl(c.redisUrl),
    otlpTracesUrl: c.otlpTracesUrl && maskUrl(c.otlpTracesUrl),
    redisCluster: c.redisCluster && { ...c.redisCluster, password: c.redisCluster.password && '***' },
  };
}

/** The traces URL as the OpenTelemetry spec reads the variables (the per-signal one as is, else the base + `/v1/traces`). */
function readTelemetry(env: NodeJS.ProcessEnv): Pick<Config, 'otlpTracesUrl' | 'otelServiceName'> {
  const [signal, base] = [env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim(), env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim().replace(/\/+$/, '')];
  const otlpTracesUrl = signal
    ? checkUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', signal, ['http:', 'https:'])
    : base
      ? `${checkUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base, ['http:', 'https:'])}/v1/traces`
      : undefined;
  return { otlpTracesUrl, otelServiceName: env.OTEL_SERVICE_NAME?.trim() || undefined };
}
