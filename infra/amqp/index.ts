import type { ChannelModel, Options } from 'amqplib';
import type { Config } from '../config';
import type { Logger } from '../log';
import { declareTopology, type TopologySettings } from '../topology';
import { openConnection } from './connection';
import type { Handler } from './consumer';
import { publisher, type Publisher } from './publisher';
import { Subscription } from './subscription';

export { UnroutableError, republishProperties } from './publisher';
export type { Handler } from './consumer';
export { requestReply, type Reply } from './request-reply';

export type ConsumeOptions = Readonly<{ prefetch?: number }>;

export type Broker = Readonly<{
  /** Publishes and waits for the broker's confirm; rejects on nack, on return (unroutable, with `mandatory`) or timeout. */
  publish(exchange: string, routingKey: string, content: Buffer, props: Options.Publish): Promise<void>;
  reply: Publisher['reply'];
  deadLetter: Publisher['deadLetter'];
  consume(queue: string, handler: Handler, o?: ConsumeOptions): Promise<void>;
  /**
   * Stops consuming, lets in-flight handlers finish (up to `graceMs`), runs `beforeDisconnect`
   * (work that still publishes), then closes the connection.
   */
  close(graceMs?: number, beforeDisconnect?: () => Promise<void>): Promise<void>;
  connected(): boolean;
  /** Each registered queue and whether it has a live consumer right now (for /healthz). */
  consumers(): ReadonlyArray<Readonly<{ queue: string; active: boolean }>>;
}>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How long the topology declaration may take after a (re)connect (see `declareWithin`). */
const DECLARE_TIMEOUT_MS = 5_000;

/**
 * Declares the topology on a channel of its own, within DECLARE_TIMEOUT_MS. Unanswered on the first
 * connect, it throws (the connection is dropped and the next address tried: nothing may consume
 * before the queues exist). Unanswered on a reconnect, the topology is already there: the channel
 * is closed and false returned, and the setup goes on, since every consumer declares its own queue
 * under its own time limit. After a RabbitMQ node dies a step sent to a survivor can wait on the
 * broker (docs/RELIABILITY.md, cluster findings); no consumer must wait behind it.
 */
async function declareWithin(m: ChannelModel, topology: TopologySettings, log: Logger, declaredBefore: boolean): Promise<boolean> {
  const admin = await m.createChannel();
  admin.on('error', (err) => log.warn({ err }, 'topology channel error'));
  let timer: NodeJS.Timeout | undefined;
  const t0 = Date.now();
  try {
    await Promise.race([
      declareTopology(admin, topology),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`topology not declared within ${DECLARE_TIMEOUT_MS} ms`)), DECLARE_TIMEOUT_MS))),
    ]);
  } catch (err) {
    admin.close().catch(() => undefined);
    if (!declaredBefore) throw err;
    log.warn({ err }, 'topology declaration did not answer; consumers declare their own queues');
    return false;
  } finally {
    clearTimeout(timer);
  }
  await admin.close();
  if (Date.now() - t0 > 1_000) log.warn({ ms: Date.now() - t0 }, 'topology declaration was slow');
  return true;
}

/**
 * One recovering connection per process. After every (re)connect it declares the topology, opens a
 * confirm channel for publishing and restarts every registered consumer on a fresh channel.
 */
export async function connectBroker(config: Config, log: Logger, name: string, probation = false): Promise<Broker> {
  const topology: TopologySettings = config;
  const settings = { deliveryLimit: config.deliveryLimit, outageHold: config.outageHold, topology };
  const subs: Subscription[] = [];
  const pub = publisher(log);
  let model: ChannelModel | undefined;
  let declared = false;

  const connection = await openConnection({
    // A config edited in code (tests) may change `amqpUrl` alone.
    urls: config.amqpUrls.includes(config.amqpUrl) ? config.amqpUrls : [config.amqpUrl],
    heartbeatSeconds: config.amqpHeartbeatSeconds,
    name,
    log,
    async setup(m) {
      model = m;
      const t0 = Date.now();
      if (await declareWithin(m, topology, log, declared)) declared = true;
      const ch = await m.createConfirmChannel();
      ch.on('error', (err) => log.warn({ err }, 'publisher channel error'));
      pub.attach(ch);
      // Side by side: each subscribe step has its own time limit, none waits for another's.
      await Promise.all(subs.map((s) => s.start(m)));
      if (Date.now() - t0 > 1_000) log.warn({ ms: Date.now() - t0 }, 'broker setup was slow');
    },
  });
  connection.on('disconnect', (err: Error) => {
    model = undefined;
    pub.attach(undefined);
    for (const s of subs) void s.start(undefined);
    log.warn({ err }, 'broker disconnected, reconnecting');
  });
  connection.on('connect', () => log.info('broker connected'));

  return {
    publish: pub.publish,
    reply: pub.reply,
    deadLetter: pub.deadLetter,
    async consume(queue, handler, o = {}) {
      const s = new Subscription(queue, handler, o.prefetch ?? config.prefetch, probation, pub, log, settings);
      subs.push(s);
      if (model) await s.start(model);
    },
    async close(graceMs = 8_000, beforeDisconnect) {
      const deadline = Date.now() + graceMs;
      await Promise.allSettled(subs.map((s) => s.stop()));
      const inFlight = subs.reduce((n, s) => n + s.inFlight.size, 0);
      log[inFlight ? 'info' : 'debug']({ inFlight }, 'consumers stopped; draining deliveries in flight');
      await Promise.race([Promise.allSettled(subs.flatMap((s) => [...s.inFlight])), sleep(graceMs)]);
      if (beforeDisconnect) await Promise.race([beforeDisconnect().catch(() => undefined), sleep(Math.max(0, deadline - Date.now()))]);
      await connection.close().catch((err: unknown) => log.debug({ err }, 'closing the broker connection'));
    },
    connected: pub.connected,
    consumers: () => subs.map((s) => ({ queue: s.queue, active: s.active })),
  };
}
