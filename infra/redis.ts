import { Cluster, Redis as Single, type RedisOptions } from 'ioredis';
import type { Config } from './config';
import { TransientError, transientKind } from './errors';
import type { Logger } from './log';

/** How many replicas must hold a write that stock correctness depends on, and how long to wait for them. */
export type ReplicaAck = Readonly<{ replicas: number; timeoutMs: number }>;

/**
 * One Redis or a Redis Cluster, behind the commands both have. Every stock script touches the
 * keys of one SKU, which share a hash tag, so it runs on a cluster as on a single server.
 * `replicaAck` (set by `connectRedis`) makes stock takes wait for replicas (see infra/stock.ts).
 */
export type Redis = (Single | Cluster) & { replicaAck?: ReplicaAck };

export type RedisSettings = Pick<Config, 'redisUrl' | 'redisCluster' | 'redisKeyPrefix' | 'redisWaitReplicas' | 'redisWaitTimeoutMs' | 'redisCommandTimeoutMs'>;

/**
 * Fails fast while Redis is down (no offline queue, one try per command, a command timeout for a
 * silent path) so that a handler sees a transient error and retries the message, instead of
 * commands piling up in memory.
 */
export async function connectRedis(s: RedisSettings, log: Logger, name: string): Promise<Redis> {
  const node: RedisOptions = {
    connectionName: `activity-quota:${name}`,
    enableOfflineQueue: false,
    // A command whose reply was lost may have run: never send it again on our own (the handler's
    // transient retry decides, and the stock scripts are idempotent per reservation).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 5_000,
    commandTimeout: s.redisCommandTimeoutMs,
    // A command timeout alone leaves the connection in place: on a silent path (packets dropped, no
    // RST) every later command would time out too, for as long as TCP takes to notice (minutes).
    // No byte within this while a reply is due: the socket is destroyed and ioredis reconnects.
    socketTimeout: s.redisCommandTimeoutMs,
    keepAlive: 10_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  };
  const redis: Redis = s.redisCluster ? cluster(s, node) : new Single(s.redisUrl, { ...node, lazyConnect: true, keyPrefix: s.redisKeyPrefix || undefined });
  if (s.redisWaitReplicas > 0) redis.replicaAck = { replicas: s.redisWaitReplicas, timeoutMs: s.redisWaitTimeoutMs };
  scopeFailures(redis);
  let lastWarn = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastWarn > 5_000) (lastWarn = Date.now()), log.warn({ err }, 'redis error');
  });
  await redis.connect().catch((err) => {
    redis.disconnect();
    throw new TransientError('redis', 'outage', `redis: ${(err as Error).message}`, { cause: err });
  });
  // Node connections open on first use, and a command to a node still connecting fails at once (no
  // offline queue): open the masters' now. One found later (a promotion) opens on its first command.
  if (redis instanceof Cluster) await Promise.all(redis.nodes('master').map((n) => (n.status === 'wait' ? n.connect().catch(() => undefined) : undefined)));
  return redis;
}

function cluster(s: RedisSettings, node: RedisOptions): Cluster {
  const c = s.redisCluster!;
  return new Cluster(
    c.nodes.map((n) => ({ ...n })),
    {
      lazyConnect: true,
      enableOfflineQueue: false,
      scaleReads: 'master',
      keyPrefix: s.redisKeyPrefix || undefined,
      // MOVED, ASK, TRYAGAIN and CLUSTERDOWN mean "not run": those are followed. A closed connection
      // may have run the command: that one is not re-sent (0), the handler's retry decides.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      maxRedirections: 16,
      // A promoted replica is found within a second even when no command is redirected.
      slotsRefreshInterval: 1_000,
      slotsRefreshTimeout: 2_000,
      clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
      redisOptions: { ...node, username: c.username, password: c.password, ...(c.tls ? { tls: {} } : {}) },
    },
  );
}

/** An error of a Redis command as the consumer needs it: a failure below the protocol or an outage reply becomes a TransientError of scope `redis`. */
export function redisFailure(err: unknown): unknown {
  if ((err as Error)?.name === 'ReplyError' && transientKind(err) === undefined) return err;
  if (err instanceof TransientError) return err;
  return new TransientError('redis', 'outage', `redis: ${String((err as Error)?.message ?? err)}`, { cause: err });
}

/**
 * Every command's failure below the Redis protocol (connection closed, stream not writable, command
 * timed out, a cluster without a node for the slot: ioredis gives these no code) becomes a
 * TransientError of scope `redis`; error replies of the server stay as they are, and
 * `transientKind` reads their code (LOADING, READONLY, MOVED, …). Pipelines report per command:
 * their callers use `redisFailure`.
 */
function scopeFailures(redis: Redis): void {
  const target = redis as unknown as { sendCommand(...args: unknown[]): Promise<unknown> };
  const send = target.sendCommand.bind(redis);
  target.sendCommand = (...args: unknown[]) => {
    const p = send(...args).catch((err: unknown) => {
      throw redisFailure(err);
    });
    // Pipelines and MULTI read each command's outcome from the command itself and drop this promise:
    // it must not become an unhandled rejection (which ends the process).
    p.catch(() => undefined);
    return p;
  };
}

/** The servers that hold data: every master of a cluster, or the one server. */
export function mastersOf(redis: Redis): Single[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** The key prefix the client adds to every key argument (not to SCAN patterns, nor to keys SCAN returns). */
export function keyPrefixOf(redis: Redis): string {
  const p = redis.options.keyPrefix;
  return typeof p === 'string' ? p : '';
}
