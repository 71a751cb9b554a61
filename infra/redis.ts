import { Redis } from 'ioredis';
import { TransientError, transientKind } from './errors';
import type { Logger } from './log';

export type { Redis };

export type RedisOptions = Readonly<{ url: string; name: string; commandTimeoutMs?: number }>;

/**
 * Fails fast while Redis is down (no offline queue, one try per command, a command timeout for a
 * silent path) so that a handler sees a transient error and retries the message, instead of
 * commands piling up in memory.
 */
export async function connectRedis(url: string, log: Logger, name: string, commandTimeoutMs = 2_000): Promise<Redis> {
  const redis = new Redis(url, {
    connectionName: `activity-quota:${name}`,
    enableOfflineQueue: false,
    // A command whose reply was lost may have run: never send it again on our own (the handler's
    // transient retry decides, and the stock scripts are idempotent per reservation).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 5_000,
    commandTimeout: commandTimeoutMs,
    keepAlive: 10_000,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  scopeFailures(redis);
  let lastWarn = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastWarn > 5_000) (lastWarn = Date.now()), log.warn({ err }, 'redis error');
  });
  await redis.connect().catch((err) => {
    throw new TransientError('redis', 'outage', `redis: ${(err as Error).message}`, { cause: err });
  });
  return redis;
}

/**
 * Every command's failure below the Redis protocol (connection closed, stream not writable, command
 * timed out: ioredis gives these no code) becomes a TransientError of scope `redis`; error replies
 * of the server stay as they are, and `transientKind` reads their code (LOADING, READONLY, …).
 */
function scopeFailures(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    const p = send(...args) as Promise<unknown>;
    return p.catch((err: unknown) => {
      if ((err as Error)?.name === 'ReplyError' && transientKind(err) === undefined) throw err;
      throw new TransientError('redis', 'outage', `redis: ${String((err as Error)?.message ?? err)}`, { cause: err });
    });
  }) as Redis['sendCommand'];
}
