import type { Channel, ChannelModel, ConsumeMessage, Options, RecoveringChannelModel } from 'amqplib';
import type { Config } from '../config';
import type { Logger } from '../log';
import { consumerActive } from '../metrics';
import { declareInputQueue, declareTopology, type TopologySettings } from '../topology';
import { openConnection } from './connection';
import { runDelivery, type Handler, type Settle } from './consumer';
import { publisher, type Publisher } from './publisher';

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

/**
 * On probation (restarted after a crash) a consumer takes one message at a time until it has acked
 * a prefetch window: if a poison message kills it again, only the poison is charged a delivery,
 * not every neighbour that happened to be in flight with it.
 */
type Consumer = {
  queue: string;
  handler: Handler;
  prefetch: number;
  probation: boolean;
  acked: number;
  channel?: Channel;
  tag?: string;
  active: boolean;
  held: Map<string, number>;
  resubscribe?: NodeJS.Timeout;
};

const RESUBSCRIBE_MS = [500, 1_000, 2_000, 5_000];

/**
 * One recovering connection per process. After every (re)connect it declares the topology, opens a
 * confirm channel for publishing and restarts every registered consumer on a fresh channel. A
 * consumer the broker cancels (queue deleted, node lost) subscribes again with backoff.
 */
export async function connectBroker(config: Config, log: Logger, name: string, probation = false): Promise<Broker> {
  const topology: TopologySettings = { deliveryLimit: config.deliveryLimit, parkMs: config.parkMs, quorumInitialGroupSize: config.quorumInitialGroupSize };
  const consumers: Consumer[] = [];
  const inFlight = new Set<Promise<unknown>>();
  const pub = publisher(log);
  let model: ChannelModel | undefined;
  let stopping = false;
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  const setActive = (c: Consumer, active: boolean) => {
    c.active = active;
    consumerActive.set({ queue: c.queue }, active ? 1 : 0);
  };

  async function subscribe(c: Consumer, m: ChannelModel, attempt = 0): Promise<void> {
    if (stopping || m !== model) return;
    try {
      const ch = c.channel && !closed.has(c.channel) ? c.channel : await openChannel(c, m);
      c.tag = (await ch.consume(c.queue, (msg) => (msg ? deliver(c, ch, msg) : later(c, m, 'consumer cancelled by the broker')))).consumerTag;
      setActive(c, true);
    } catch (err) {
      c.channel = undefined;
      later(c, m, 'cannot consume yet', err, attempt + 1);
    }
  }

  /** Subscribes again after a pause: the broker cancelled the consumer (queue deleted, moved, node lost) or its channel closed. */
  function later(c: Consumer, m: ChannelModel, why: string, err?: unknown, attempt = 0): void {
    setActive(c, false);
    if (stopping || m !== model) return;
    log.warn({ err, queue: c.queue, attempt }, `${why}, subscribing again`);
    clearTimeout(c.resubscribe);
    c.resubscribe = setTimeout(() => void subscribe(c, m, attempt), RESUBSCRIBE_MS[Math.min(attempt, RESUBSCRIBE_MS.length - 1)]);
  }

  const closed = new WeakSet<Channel>();
  async function openChannel(c: Consumer, m: ChannelModel): Promise<Channel> {
    const ch = await m.createChannel();
    ch.on('error', (err) => log.warn({ err, queue: c.queue }, 'consumer channel error'));
    ch.on('close', () => {
      closed.add(ch);
      if (c.channel === ch) later(c, m, 'consumer channel closed');
    });
    await ch.prefetch(c.probation ? 1 : c.prefetch);
    // The queue may have been deleted under us: bring it back as the topology says.
    await declareInputQueue(ch, c.queue, topology);
    c.channel = ch;
    return ch;
  }

  function deliver(c: Consumer, ch: Channel, msg: ConsumeMessage): void {
    const p = runDelivery(
      {
        queue: c.queue,
        handler: c.handler,
        publisher: pub,
        log,
        deliveryLimit: config.deliveryLimit,
        outageHold: config.outageHold,
        stopping: () => stopping,
        held: c.held,
        live: (x: Settle) => x === c.channel && !closed.has(ch),
        sleep,
      },
      ch,
      msg,
    ).then((kind) => {
      if (kind === 'ack' && c.probation && ++c.acked >= c.prefetch) endProbation(c, ch);
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  function endProbation(c: Consumer, ch: Channel): void {
    c.probation = false;
    ch.prefetch(c.prefetch).catch((err: unknown) => log.warn({ err, queue: c.queue }, 'could not raise the prefetch after probation'));
    log.info({ queue: c.queue, prefetch: c.prefetch }, 'probation over, full prefetch');
  }

  const connection: RecoveringChannelModel = await openConnection({
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
      for (const c of consumers) (c.channel = undefined), await subscribe(c, m);
    },
  });
  connection.on('disconnect', (err: Error) => {
    model = undefined;
    pub.attach(undefined);
    for (const c of consumers) setActive(c, false);
    log.warn({ err }, 'broker disconnected, reconnecting');
  });
  connection.on('connect', () => log.info('broker connected'));

  return {
    publish: pub.publish,
    reply: pub.reply,
    deadLetter: pub.deadLetter,
    async consume(queue, handler, o = {}) {
      const c: Consumer = { queue, handler, prefetch: o.prefetch ?? config.prefetch, probation, acked: 0, active: false, held: new Map() };
      consumers.push(c);
      setActive(c, false);
      if (model && !stopping) await subscribe(c, model);
    },
    async close(graceMs = 8_000, beforeDisconnect) {
      stopping = true;
      const deadline = Date.now() + graceMs;
      for (const c of consumers) clearTimeout(c.resubscribe);
      await Promise.allSettled(consumers.map((c) => (c.channel && c.tag ? c.channel.cancel(c.tag) : undefined)));
      await Promise.race([Promise.allSettled([...inFlight]), sleep(graceMs)]);
      if (beforeDisconnect) await Promise.race([beforeDisconnect().catch(() => undefined), sleep(Math.max(0, deadline - Date.now()))]);
      await connection.close().catch((err: unknown) => log.debug({ err }, 'closing the broker connection'));
    },
    connected: pub.connected,
    consumers: () => consumers.map((c) => ({ queue: c.queue, active: c.active })),
  };
}
