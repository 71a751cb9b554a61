import { randomUUID } from 'node:crypto';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type MessageProperties, type Options } from 'amqplib';
import type { Config } from './config';
import { PermanentError, isTransient } from './errors';
import type { Logger } from './log';
import { handlerDuration, messagesTotal, type MessageOutcome } from './metrics';
import { DEAD_LETTER_QUEUE, declareTopology } from './topology';

/** What a handler decides about one delivery; the consumer loop turns it into ack / dead-letter / retry. */
export type Handler = (msg: ConsumeMessage) => Promise<void>;

export type ConsumeOptions = Readonly<{ prefetch?: number }>;

export type Broker = Readonly<{
  /** Publishes and waits for the broker's confirm; rejects on nack, on return (unroutable, with `mandatory`) or timeout. */
  publish(exchange: string, routingKey: string, content: Buffer, props: Options.Publish): Promise<void>;
  /** Sends a request/reply answer to `msg.properties.replyTo`; false when there is nobody to answer. */
  reply(msg: ConsumeMessage, body: unknown): Promise<boolean>;
  /** Copies `msg` to the dead-letter queue with `x-error` (and an `x-death` entry) and returns once confirmed. */
  deadLetter(msg: ConsumeMessage, queue: string, code: string, reason: string): Promise<void>;
  consume(queue: string, handler: Handler, o?: ConsumeOptions): Promise<void>;
  /**
   * Stops consuming, lets in-flight handlers finish (up to `graceMs`), runs `beforeDisconnect`
   * (work that still publishes), then closes the connection.
   */
  close(graceMs?: number, beforeDisconnect?: () => Promise<void>): Promise<void>;
  connected(): boolean;
}>;

export class UnroutableError extends Error {}

const PUBLISH_TIMEOUT_MS = 10_000;
const MAX_OUTAGE_MS = 10 * 60_000;

/**
 * One recovering connection per process. After every (re)connect it declares the topology, opens a
 * confirm channel for publishing and restarts every registered consumer on a fresh channel.
 */
export async function connectBroker(config: Config, log: Logger, name: string, probation = false): Promise<Broker> {
  // On probation (restarted after a crash) a consumer takes one message at a time until it has acked
  // a prefetch window: if a poison message kills it again, only the poison is charged a delivery,
  // not every neighbour that happened to be in flight with it.
  type Consumer = { queue: string; handler: Handler; prefetch: number; probation: boolean; acked: number; channel?: Channel; tag?: string };
  const consumers: Consumer[] = [];
  const inFlight = new Set<Promise<void>>();
  let model: ChannelModel | undefined;
  let pub: ConfirmChannel | undefined;
  let returned = new Set<string>();
  let stopping = false;

  async function startConsumer(c: Consumer, m: ChannelModel): Promise<void> {
    const ch = await m.createChannel();
    ch.on('error', (err) => log.warn({ err, queue: c.queue }, 'consumer channel error'));
    await ch.prefetch(c.probation ? 1 : c.prefetch);
    c.channel = ch;
    const { consumerTag } = await ch.consume(c.queue, (msg) => {
      if (!msg) return log.warn({ queue: c.queue }, 'consumer cancelled by the broker');
      const p = dispatch(c, ch, msg).finally(() => inFlight.delete(p));
      inFlight.add(p);
    });
    c.tag = consumerTag;
  }

  function endProbation(c: Consumer, ch: Channel): void {
    c.probation = false;
    ch.prefetch(c.prefetch).catch((err: unknown) => log.warn({ err, queue: c.queue }, 'could not raise the prefetch after probation'));
    log.info({ queue: c.queue, prefetch: c.prefetch }, 'probation over, full prefetch');
  }

  async function dispatch(c: Consumer, ch: Channel, msg: ConsumeMessage): Promise<void> {
    const attempt = Number(msg.properties.headers?.['x-delivery-count'] ?? 0) + 1;
    let delay = 200;
    const firstFailure = Date.now();
    for (;;) {
      const started = process.hrtime.bigint();
      const count = (outcome: MessageOutcome) => messagesTotal.inc({ queue: c.queue, outcome });
      try {
        await c.handler(msg);
        handlerDuration.observe({ queue: c.queue }, Number(process.hrtime.bigint() - started) / 1e9);
        count('ack');
        settle(ch, msg, 'ack');
        if (c.probation && ++c.acked >= c.prefetch) endProbation(c, ch);
        return;
      } catch (err) {
        handlerDuration.observe({ queue: c.queue }, Number(process.hrtime.bigint() - started) / 1e9);
        if (err instanceof PermanentError) {
          count('dead_letter');
          log.warn({ queue: c.queue, messageId: msg.properties.messageId, code: err.code, reason: err.reason }, 'message dead-lettered');
          if (await deadLetterOrRequeue(c, ch, msg, err.code, err.reason)) return;
        } else if (isTransient(err) && !stopping) {
          // Hold the message and retry: an outage must not burn through the delivery limit.
          if (Date.now() - firstFailure > MAX_OUTAGE_MS) {
            log.fatal({ err, queue: c.queue }, 'dependency unreachable for too long, exiting for the supervisor');
            process.exit(1);
          }
          log.warn({ err, queue: c.queue, retryInMs: delay, outageMs: Date.now() - firstFailure }, 'transient failure, retrying');
          count('retry');
          await sleep(delay);
          delay = Math.min(delay * 2, 5_000);
          if (ch === c.channel) continue;
          return; // the channel was replaced: the broker redelivers on the new one
        } else if (stopping) {
          count('requeue');
          return settle(ch, msg, 'requeue');
        } else if (attempt >= config.deliveryLimit) {
          count('dead_letter');
          log.error({ err, queue: c.queue, attempt }, 'handler failed on the last allowed delivery');
          if (await deadLetterOrRequeue(c, ch, msg, 'HANDLER_FAILED', `failed ${attempt} times: ${String((err as Error)?.message ?? err)}`)) return;
        } else {
          log.error({ err, queue: c.queue, attempt }, 'handler failed, message requeued');
          count('requeue');
          await sleep(Math.min(100 * 2 ** attempt, 5_000));
          return settle(ch, msg, 'requeue');
        }
      }
    }
  }

  /** Dead-letters and acks; on a broker failure holds the message and says false so the caller retries. */
  async function deadLetterOrRequeue(c: Consumer, ch: Channel, msg: ConsumeMessage, code: string, reason: string): Promise<boolean> {
    try {
      await broker.deadLetter(msg, c.queue, code, reason);
      settle(ch, msg, 'ack');
      return true;
    } catch (err) {
      log.warn({ err, queue: c.queue }, 'could not dead-letter yet');
      await sleep(1_000);
      if (ch !== c.channel) return true;
      return false;
    }
  }

  function settle(ch: Channel, msg: ConsumeMessage, how: 'ack' | 'requeue'): void {
    try {
      if (how === 'ack') ch.ack(msg);
      else ch.nack(msg, false, true);
    } catch (err) {
      // The channel died with the connection: the broker redelivers, and handlers are idempotent.
      log.debug({ err }, 'stale delivery dropped');
    }
  }

  const connection = await amqplib.connect(config.amqpUrl, {
    clientProperties: { connection_name: `activity-quota:${name}:${process.pid}` },
    // Small frames (acks, replies, confirms) must not wait for Nagle + delayed ACK (~40 ms each).
    noDelay: true,
    recovery: {
      initialDelay: 200,
      maxDelay: 5_000,
      initialMaxRetries: 20,
      // About five minutes without a broker, then give up and let the supervisor restart us.
      maxRetries: 60,
      async setup(m: ChannelModel) {
        model = m;
        coalesceWrites(m, log);
        const admin = await m.createChannel();
        admin.on('error', (err) => log.warn({ err }, 'topology channel error'));
        await declareTopology(admin, config.deliveryLimit);
        await admin.close();
        const ch = await m.createConfirmChannel();
        ch.on('error', (err) => log.warn({ err }, 'publisher channel error'));
        const seen = new Set<string>();
        ch.on('return', (r: ConsumeMessage) => r.properties.messageId && seen.add(String(r.properties.messageId)));
        returned = seen;
        pub = ch;
        if (!stopping) for (const c of consumers) await startConsumer(c, m);
      },
    },
  });
  connection.on('error', (err) => log.warn({ err }, 'broker connection error'));
  connection.on('handler-error', (err: Error, event: string) => log.error({ err, event }, 'error in a broker event listener'));
  connection.on('disconnect', (err) => {
    pub = undefined;
    log.warn({ err }, 'broker disconnected, reconnecting');
  });
  connection.on('connect', () => log.info('broker connected'));
  connection.on('reconnect-failed', (err) => {
    log.fatal({ err }, 'broker unreachable for too long, exiting');
    process.exit(1);
  });

  const broker: Broker = {
    async publish(exchange, routingKey, content, props) {
      const ch = pub;
      if (!ch) throw Object.assign(new Error('broker connection is closed'), { code: 'ECONNRESET' });
      const seen = returned;
      const messageId = props.messageId ?? randomUUID();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(Object.assign(new Error('publish confirm timed out'), { code: 'ETIMEDOUT' })), PUBLISH_TIMEOUT_MS);
        try {
          ch.publish(exchange, routingKey, content, { ...props, messageId }, (err) => {
            clearTimeout(timer);
            if (err) return reject(new Error(`broker nacked the publish: ${err.message ?? err}`));
            if (seen.delete(messageId)) return reject(new UnroutableError(`unroutable: no queue bound to ${exchange || '(default)'} / ${routingKey}`));
            resolve();
          });
        } catch (err) {
          clearTimeout(timer);
          reject(Object.assign(err as Error, { code: 'ECONNRESET' }));
        }
      });
    },

    async reply(msg, body) {
      const { replyTo, correlationId } = msg.properties;
      if (!replyTo) return false;
      try {
        await broker.publish('', String(replyTo), Buffer.from(JSON.stringify(body)), {
          correlationId,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          mandatory: true,
        });
        return true;
      } catch (err) {
        if (!(err instanceof UnroutableError)) throw err;
        // The caller went away; the effect stands and a retried request finds it.
        log.warn({ replyTo, correlationId }, 'reply undeliverable: the caller queue is gone');
        return false;
      }
    },

    async deadLetter(msg, queue, code, reason) {
      const p = msg.properties;
      const headers = { ...(p.headers ?? {}) };
      const previous = Array.isArray(headers['x-death']) ? headers['x-death'] : [];
      headers['x-error'] = `${code}: ${reason}`.slice(0, 1_000);
      headers['x-original-queue'] = queue;
      headers['x-death'] = [
        { count: 1, reason: 'rejected', queue, time: { '!': 'timestamp', value: Math.floor(Date.now() / 1000) }, exchange: msg.fields.exchange, 'routing-keys': [msg.fields.routingKey] },
        ...previous,
      ];
      await broker.publish('', DEAD_LETTER_QUEUE, msg.content, { ...republishProperties(p), headers });
    },

    async consume(queue, handler, o = {}) {
      const c: Consumer = { queue, handler, prefetch: o.prefetch ?? config.prefetch, probation, acked: 0 };
      consumers.push(c);
      if (model && !stopping) await startConsumer(c, model);
    },

    async close(graceMs = 8_000, beforeDisconnect) {
      stopping = true;
      const deadline = Date.now() + graceMs;
      await Promise.allSettled(consumers.map((c) => (c.channel && c.tag ? c.channel.cancel(c.tag) : undefined)));
      await Promise.race([Promise.allSettled([...inFlight]), sleep(graceMs)]);
      if (beforeDisconnect) await Promise.race([beforeDisconnect().catch(() => undefined), sleep(Math.max(0, deadline - Date.now()))]);
      await connection.close().catch((err: unknown) => log.debug({ err }, 'closing the broker connection'));
    },

    connected: () => pub !== undefined,
  };
  return broker;
}

/**
 * With TCP_NODELAY every frame amqplib writes is a packet of its own: an ack, a reply, a publish
 * each cost a syscall here and a read at the broker. amqplib's multiplexer writes all frames queued
 * in one turn of the event loop in one go (`_readIncoming`, run from setImmediate); corking the
 * socket around it turns that go into one write. No frame waits longer than before.
 * amqplib internals (`connection.muxer`, `connection.stream`): if they are not there, nothing changes.
 */
function coalesceWrites(m: ChannelModel, log: Logger): void {
  type Writable = { cork(): void; uncork(): void };
  const conn = (m as unknown as { connection?: { muxer?: { _readIncoming?: () => void }; stream?: Partial<Writable> } }).connection;
  const mux = conn?.muxer;
  const out = conn?.stream;
  if (!mux || typeof mux._readIncoming !== 'function' || typeof out?.cork !== 'function' || typeof out.uncork !== 'function') {
    log.warn('amqplib internals changed: frames are written one by one');
    return;
  }
  const drainQueued = mux._readIncoming.bind(mux);
  const socket = out as Writable;
  mux._readIncoming = () => {
    socket.cork();
    try {
      drainQueued();
    } finally {
      socket.uncork();
    }
  };
}

/** The properties of a delivery to publish it again (dead-lettering, requeueing), persistent. */
export function republishProperties(p: MessageProperties): Options.Publish {
  return {
    messageId: p.messageId ?? undefined,
    correlationId: p.correlationId ?? undefined,
    replyTo: p.replyTo ?? undefined,
    contentType: p.contentType ?? undefined,
    contentEncoding: p.contentEncoding ?? undefined,
    type: p.type ?? undefined,
    timestamp: p.timestamp ?? undefined,
    persistent: true,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
