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

  const connection = await openConnection({
    // A config edited in code (tests) may change `amqpUrl` alone.
    urls: config.amqpUrls.includes(config.amqpUrl) ? config.amqpUrls : [config.amqpUrl],
    heartbeatSeconds: config.amqpHeartbeatSeconds,
    name,
    log,
    async setup(m) {
      model = m;
      const admin = await m.createChannel();
      admin.on('error', (err) => log.warn({ err }, 'topology channel error'));
      await declareTopology(admin, topology);
      await admin.close();
      const ch = await m.createConfirmChannel();
      ch.on('error', (err) => log.warn({ err }, 'publisher channel error'));
      pub.attach(ch);
      for (const s of subs) await s.start(m);
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
