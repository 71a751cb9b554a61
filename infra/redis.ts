import { Redis } from 'ioredis';
import type { Logger } from './log';

export type { Redis };

/**
 * Fails fast while Redis is down (no offline queue, one try per command) so that a handler sees a
 * transient error and retries the message, instead of commands piling up in memory.
 */
export async function connectRedis(url: string, log: Logger, name: string): Promise<Redis> {
  const redis = new Redis(url, {
    connectionName: `activity-quota:${name}`,
    enableOfflineQueue: false,
    // A command whose reply was lost may have run: never send it again on our own (the handler's
    // transient retry decides, and the stock scripts are idempotent per reservation).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 5_000,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  let lastWarn = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastWarn > 5_000) (lastWarn = Date.now()), log.warn({ err }, 'redis error');
  });
  await redis.connect();
  return redis;
}
