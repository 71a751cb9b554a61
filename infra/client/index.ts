import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import amqplib, { type ChannelModel, type ConsumeMessage, type MessageProperties } from 'amqplib';
import type { z } from 'zod';
import { EVENT_DATA, type Event } from '../contract/events';
import { reasonOf } from '../contract/fields';
import { CancelReply, HistoryReply, PartakeReply, QueryReply, type REPLY_CODES, UseReply, type CancelledOrder, type History, type Quota, type RaffleOrder, type Reply } from '../contract/replies';
import type { BehaviorPayload, RechargePayload } from '../contract/requests';
import { clientAmqpUrl } from '../config';
import { EVENTS_EXCHANGE, QUEUES, type Topic } from '../topology';
import { extractTraceContext } from '../trace-context';
import { ContractError, DIRECT_REPLY_TO, ReplyLostError, TimeoutError, UnroutableError, openWire, parseJson, type PublishOptions, type RawReply } from './wire';

export { ContractError, DIRECT_REPLY_TO, ReplyLostError, TimeoutError, UnroutableError, type PublishOptions, type RawReply };
export { EVENTS_EXCHANGE, QUEUES, TOPICS, DEAD_LETTER_QUEUE, type Topic } from '../topology';
export { RESULT_CODES, type ResultCode, type Reply, type RaffleOrder, type Quota, type History, type CancelledOrder } from '../contract/replies';
export type { Event, EventData } from '../contract/events';

/**
 * A caller of activity-quota (package export `activity-quota/client`). Requests wait for their
 * reply (typed by the queue's result codes) up to a timeout; recharge and behavior resolve once the
 * broker confirmed the message; subscribe delivers events once per message id.
 */
export type ClientOptions = Readonly<{
  /** Default `AMQP_URL`, else amqp://guest:guest@127.0.0.1:5672. */
  url?: string;
  /** Per request, default 10000 ms. */
  timeoutMs?: number;
  /** Shown in the broker's connection list. */
  name?: string;
  /**
   * Where replies come: `queue` (default), an exclusive server-named queue of this client, or
   * `direct`, RabbitMQ's Direct Reply-to (amq.rabbitmq.reply-to). On RabbitMQ 3.10 a worker's
   * mandatory reply to Direct Reply-to is delivered and also returned, so the worker logs
   * "reply undeliverable" for every reply; hence not the default.
   */
  replyTo?: 'queue' | 'direct';
  /** Check replies and events against the contract's schemas (default true); a mismatch is a ContractError. */
  validate?: boolean;
  /** TCP_NODELAY (default true). */
  noDelay?: boolean;
}>;

type PartakeCode = (typeof REPLY_CODES.partake)[number];
type UseCode = (typeof REPLY_CODES.use)[number];
type CancelCode = (typeof REPLY_CODES.cancel)[number];
type QueryCode = (typeof REPLY_CODES.query)[number];
type HistoryCode = (typeof REPLY_CODES.history)[number];
/**
 * `messageId`: the request's message id (default a new UUID). Give a partake's retry the id of the
 * first attempt: the service then answers the order that request created (in its state now) rather
 * than spending another chance. A use's or cancel's retry with the first attempt's id is answered
 * `0000` again if that attempt applied, instead of `ERR_BIZ_009`.
 */
type Call = Readonly<{ timeoutMs?: number; messageId?: string }>;

export type Delivery = Readonly<{ routingKey: string; properties: MessageProperties; body: unknown; raw: Buffer; redelivered: boolean }>;
export type Subscription = Readonly<{ queue: string; close(): Promise<void> }>;
export type SubscribeOptions = Readonly<{
  /** A durable queue of yours (kept across restarts); default a server-named exclusive one. */
  queue?: string;
  /** Skip a message id seen among the last `dedupeWindow` (default 10000); false delivers every copy. */
  dedupe?: boolean;
  dedupeWindow?: number;
  prefetch?: number;
  /** Override the client's `validate` for this subscription. */
  validate?: boolean;
  /** A handler that threw, or an event that does not match the contract: the message is acked (not redelivered in a loop). */
  onError?: (err: Error, delivery: Delivery) => void;
}>;

export type Client = Readonly<{
  partake(req: { userId: string; activityId: number }, o?: Call): Promise<Reply<RaffleOrder, PartakeCode>>;
  query(req: { userId: string; activityId: number }, o?: Call): Promise<Reply<Quota, QueryCode>>;
  history(req: { userId: string; activityId: number; limit?: number; before?: number }, o?: Call): Promise<Reply<History, HistoryCode>>;
  use(req: { userId: string; orderId: string }, o?: Call): Promise<Reply<RaffleOrder, UseCode>>;
  cancel(req: { userId: string; orderId: string }, o?: Call): Promise<Reply<CancelledOrder, CancelCode>>;
  /** Resolves with the message id once the broker has it; the outcome is a recharge.completed / recharge.rejected event. */
  recharge(req: z.input<typeof RechargePayload>, o?: PublishOptions): Promise<string>;
  behavior(req: z.input<typeof BehaviorPayload>, o?: PublishOptions): Promise<string>;
  subscribe(routingKeys: readonly (Topic | string)[], handler: (event: Event, delivery: Delivery) => void | Promise<void>, o?: SubscribeOptions): Promise<Subscription>;
  /** Low level: a confirmed publish to a queue (or `o.exchange`). */
  publish(to: string, payload: unknown, o?: PublishOptions): Promise<string | undefined>;
  /** Low level: request/reply without checking the reply. */
  request(queue: string, payload: unknown, o?: PublishOptions & Call): Promise<RawReply>;
  connection: ChannelModel;
  close(): Promise<void>;
}>;

export async function connect(o: ClientOptions = {}): Promise<Client> {
  const url = o.url ?? clientAmqpUrl();
  const conn = await amqplib.connect(url, { noDelay: o.noDelay ?? true, clientProperties: { connection_name: o.name ?? `activity-quota-client:${process.pid}` } });
  conn.on('error', () => undefined); // surfaces as 'close' and rejected calls
  const wire = await openWire(conn, o.timeoutMs ?? 10_000, (o.replyTo ?? 'queue') === 'queue');
  const validate = o.validate ?? true;
  const subscriptions = new Set<Subscription>();

  const ask = <R>(queue: string, schema: z.ZodType, payload: unknown, call: Call = {}): Promise<R> =>
    traced(`request ${queue}`, SpanKind.CLIENT, queue, async () => {
      const r = await wire.request(queue, payload, call);
      const code = (r.body as { code?: unknown } | undefined)?.code;
      if (typeof code === 'string') trace.getActiveSpan()?.setAttribute('aq.reply.code', code);
      return checked<R>(queue, schema, r.body);
    });
  const checked = <R>(queue: string, schema: z.ZodType, body: unknown): R => {
    if (!validate) return body as R;
    const result = schema.safeParse(body);
    if (!result.success) throw new ContractError(`reply from ${queue} does not match the contract: ${reasonOf(result.error)}`, body);
    return result.data as R;
  };
  const send = (queue: string, payload: unknown, po?: PublishOptions) => traced(`send ${queue}`, SpanKind.PRODUCER, queue, async () => (await wire.publish(queue, payload, po))!);

  return {
    partake: (req, c) => ask(QUEUES.partake, PartakeReply, req, c),
    query: (req, c) => ask(QUEUES.accountQuery, QueryReply, req, c),
    history: (req, c) => ask(QUEUES.accountHistory, HistoryReply, req, c),
    use: (req, c) => ask(QUEUES.raffleOrderUsed, UseReply, req, c),
    cancel: (req, c) => ask(QUEUES.raffleOrderCancel, CancelReply, req, c),
    recharge: (req, po) => send(QUEUES.recharge, req, po),
    behavior: (req, po) => send(QUEUES.behavior, req, po),
    async subscribe(keys, handler, so = {}) {
      const s = await subscribe(conn, keys, handler, { validate, ...so });
      subscriptions.add(s);
      return { queue: s.queue, close: () => (subscriptions.delete(s), s.close()) };
    },
    publish: wire.publish,
    request: wire.request,
    connection: conn,
    async close() {
      for (const s of subscriptions) await s.close();
      await wire.close();
      await conn.close().catch(() => undefined);
    },
  };
}

const tracer = () => trace.getTracer('activity-quota/client');

/** `fn` in a span (a no-op one unless the caller set up OpenTelemetry); the wire injects it as `traceparent`. */
function traced<T>(name: string, kind: SpanKind, queue: string, fn: () => Promise<T>, parent?: Context): Promise<T> {
  const attributes = { 'messaging.system': 'rabbitmq', 'messaging.destination.name': queue };
  const run = async (span: Span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  };
  return parent ? tracer().startActiveSpan(name, { kind, attributes }, parent, run) : tracer().startActiveSpan(name, { kind, attributes }, run);
}

async function subscribe(conn: ChannelModel, keys: readonly string[], handler: (e: Event, d: Delivery) => void | Promise<void>, o: SubscribeOptions): Promise<Subscription> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  await ch.prefetch(o.prefetch ?? 100);
  await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
  const queue = o.queue ? (await ch.assertQueue(o.queue, { durable: true })).queue : (await ch.assertQueue('', { exclusive: true, autoDelete: true })).queue;
  for (const k of keys) await ch.bindQueue(queue, EVENTS_EXCHANGE, k);
  const seen = new Set<string>();
  const window = o.dedupeWindow ?? 10_000;
  // Each event in a consumer span continuing its trace (the `traceparent` the relay put in its headers).
  const onMessage = (m: ConsumeMessage) => traced(`process ${m.fields.routingKey}`, SpanKind.CONSUMER, queue, () => onEvent(m), extractTraceContext(m.properties.headers, ROOT_CONTEXT));
  const onEvent = async (m: ConsumeMessage) => {
    const body = parseJson(m.content);
    const delivery: Delivery = { routingKey: m.fields.routingKey, properties: m.properties, body, raw: m.content, redelivered: m.fields.redelivered };
    const env = (body ?? {}) as { id?: unknown; timestamp?: unknown; data?: unknown };
    const id = m.properties.messageId ? String(m.properties.messageId) : typeof env.id === 'string' ? env.id : undefined;
    try {
      if (o.dedupe !== false && id !== undefined && seen.has(id)) return;
      const event = { type: m.fields.routingKey, id: id ?? '', timestamp: Number(env.timestamp), data: env.data } as Event;
      if (o.validate) {
        const schema = (EVENT_DATA as Record<string, z.ZodType | undefined>)[m.fields.routingKey];
        if (!schema) throw new ContractError(`routing key ${m.fields.routingKey} is not in the contract`, body);
        const r = schema.safeParse(env.data);
        if (!r.success) throw new ContractError(`${m.fields.routingKey} event does not match the contract: ${reasonOf(r.error)}`, body);
      }
      await handler(event, delivery);
      if (o.dedupe !== false && id !== undefined) {
        seen.add(id);
        if (seen.size > window) seen.delete(seen.values().next().value!);
      }
    } catch (err) {
      o.onError?.(err as Error, delivery);
    } finally {
      ch.ack(m);
    }
  };
  // One at a time, in order: a copy arriving while the first is handled is then seen as a duplicate.
  let chain = Promise.resolve();
  const { consumerTag } = await ch.consume(queue, (m) => {
    if (m) chain = chain.then(() => onMessage(m));
  });
  return {
    queue,
    async close() {
      await ch.cancel(consumerTag).catch(() => undefined);
      await ch.close().catch(() => undefined);
    },
  };
}
