import { connectBroker, type Broker } from './amqp';
import { processSwitches, type Config } from './config';
import { newOrderId, systemClock, type Clock } from './ids';
import { log as rootLog, type Logger } from './log';
import { createRelay, type Relay } from './relay';
import { connectRedis, type Redis } from './redis';
import { openDatabases, type Databases } from './shards';
import { registerContext } from './telemetry';

/** What a worker gets: configuration, open connections, its outbox relay, the clock and the id source. It owns none of them. */
export type Context = Readonly<{ name: string; config: Config; log: Logger; dbs: Databases; redis: Redis; broker: Broker; relay: Relay; clock: Clock; newOrderId: () => string }>;

/** A worker's `start` registers its consumers and jobs; the returned function stops its jobs. */
export type Start = (ctx: Context) => Promise<(() => Promise<void>) | void>;

/** Opens everything a worker needs; `close()` undoes it in reverse order. */
export async function openContext(name: string, config: Config, poolSize = config.dbPoolSize): Promise<Context & { close(graceMs?: number): Promise<void> }> {
  registerContext(); // each delivery's span and log fields live in the active context
  const log = rootLog.child({ worker: name });
  const dbs = openDatabases(config, { poolSize, name, log });
  const redis = await connectRedis(config, log, name).catch(async (err) => {
    await dbs.close();
    throw err;
  });
  const broker = await connectBroker(config, log, name, processSwitches().probation).catch(async (err) => {
    redis.disconnect();
    await dbs.close();
    throw err;
  });
  const relay = createRelay(broker, config.outbox, log);
  return {
    name,
    config,
    log,
    dbs,
    redis,
    broker,
    relay,
    clock: systemClock,
    newOrderId,
    async close(graceMs) {
      await broker.close(graceMs, relay.drain);
      redis.disconnect();
      await dbs.close();
    },
  };
}
