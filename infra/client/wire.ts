import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, MessageProperties, Options } from 'amqplib';
import { injectTraceHeaders } from '../trace-context';

/** The broker side of the client: confirmed publishes and request/reply over one confirm channel. */

export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}
/** No queue is bound to what was published (mandatory publish returned): is the service installed? */
export class UnroutableError extends Error {
  override name = 'UnroutableError';
}
/** The request was published and confirmed, then the channel closed before its reply came: the request may take effect. */
export class ReplyLostError extends Error {
  override name = 'ReplyLostError';
}
/** A reply or event that does not match the contract's schema. */
export class ContractError extends Error {
  override name = 'ContractError';
  constructor(
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export type PublishOptions = Readonly<{
  /** Default: the default exchange, so `to` is a queue name. */
  exchange?: string;
  /** A body sent as is instead of `payload` (for tests of malformed input). */
  raw?: string | Buffer;
  /** Wrap the payload as `{id, timestamp, data}` (the id = the messageId). */
  envelope?: boolean;
  /** Default a fresh uuid; `null` sends none. */
  messageId?: string | null;
  /** Default true: an unroutable message rejects with UnroutableError. */
  mandatory?: boolean;
  props?: Options.Publish;
}>;

export type RawReply = Readonly<{ body: unknown; properties: MessageProperties; raw: Buffer; at: number }>;

type Pending = { resolve(r: RawReply): void; reject(e: Error): void; timer: NodeJS.Timeout };

export type Wire = Readonly<{
  publish(to: string, payload: unknown, o?: PublishOptions): Promise<string | undefined>;
  request(queue: string, payload: unknown, o?: PublishOptions & { timeoutMs?: number }): Promise<RawReply>;
  close(): Promise<void>;
}>;

const bodyOf = (payload: unknown, o: PublishOptions, messageId: string | undefined): Buffer =>
  o.raw !== undefined ? Buffer.from(o.raw) : Buffer.from(JSON.stringify(o.envelope ? { id: messageId ?? randomUUID(), timestamp: Date.now(), data: payload } : payload));

export function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The headers with the caller's active span as W3C `traceparent` (when the caller traces: `@opentelemetry/api` set up); one given is kept. */
function traced(headers: Options.Publish['headers']): Options.Publish['headers'] {
  if (headers?.traceparent !== undefined) return headers;
  const out = injectTraceHeaders(headers ?? {});
  return out.traceparent === undefined ? headers : out;
}

/** One publish of the wire: resolves with the message id once confirmed; a return (with `mandatory`) rejects as unroutable. */
function publishConfirmed(ch: ConfirmChannel, returned: Set<string>, to: string, payload: unknown, o: PublishOptions): Promise<string | undefined> {
  const messageId = o.messageId === null ? undefined : (o.messageId ?? randomUUID());
  const mandatory = o.mandatory ?? true;
  // A confirm channel still sends a message without a messageId; a return is matched by a private one then.
  const trackId = messageId ?? (mandatory ? randomUUID() : undefined);
  const props: Options.Publish = {
    persistent: true,
    contentType: 'application/json',
    timestamp: Math.floor(Date.now() / 1000),
    mandatory,
    ...o.props,
    messageId: o.props?.messageId ?? trackId,
    headers: traced(o.props?.headers),
  };
  return new Promise((resolve, reject) => {
    ch.publish(o.exchange ?? '', to, bodyOf(payload, o, messageId), props, (err) => {
      if (err) return reject(new Error(`the broker refused the message: ${err.message ?? err}`));
      if (trackId && returned.delete(trackId))
        return reject(new UnroutableError(`no queue bound to ${o.exchange ? `${o.exchange} ${to}` : to}: is the service installed there (npm start declares it)?`));
      resolve(messageId);
    });
  });
}

/** Opens the publishing channel; replies come to an exclusive server-named queue, or with `replyQueue` false by Direct Reply-to. */
export async function openWire(conn: ChannelModel, defaultTimeoutMs: number, replyQueue: boolean): Promise<Wire> {
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  let closed: Error | undefined;
  const pending = new Map<string, Pending>();
  // A return arrives before its confirm: the confirm callback finds its message id here.
  const returned = new Set<string>();
  ch.on('error', (err: Error) => (closed = err));
  ch.on('close', () => {
    closed ??= new Error('channel closed');
    const lost = new ReplyLostError(`the channel closed before the reply came (${closed.message}); the request was sent`, { cause: closed });
    for (const id of [...pending.keys()]) settle(id)?.reject(lost);
  });
  ch.on('return', (m: ConsumeMessage) => m.properties.messageId && returned.add(String(m.properties.messageId)));
  const settle = (id: string): Pending | undefined => {
    const p = pending.get(id);
    if (!p) return undefined;
    pending.delete(id);
    clearTimeout(p.timer);
    return p;
  };
  const replyTo = replyQueue ? (await ch.assertQueue('', { exclusive: true, autoDelete: true })).queue : DIRECT_REPLY_TO;
  await ch.consume(
    replyTo,
    (m) => {
      if (!m) return;
      settle(String(m.properties.correlationId))?.resolve({ body: parseJson(m.content), properties: m.properties, raw: m.content, at: performance.now() });
    },
    { noAck: true },
  );

  const publish: Wire['publish'] = (to, payload, o = {}) => (closed ? Promise.reject(closed) : publishConfirmed(ch, returned, to, payload, o));

  return {
    publish,
    async request(queue, payload, o = {}) {
      const correlationId = randomUUID();
      const timeoutMs = o.timeoutMs ?? defaultTimeoutMs;
      const reply = new Promise<RawReply>((resolve, reject) => {
        const timer = setTimeout(() => settle(correlationId) && reject(new TimeoutError(`no reply from ${queue} within ${timeoutMs} ms: is the service running?`)), timeoutMs);
        pending.set(correlationId, { resolve, reject, timer });
      });
      reply.catch(() => undefined); // handled by the caller once the publish is confirmed
      try {
        await publish(queue, payload, { ...o, props: { ...o.props, replyTo, correlationId } });
      } catch (err) {
        settle(correlationId);
        throw err;
      }
      return reply;
    },
    async close() {
      for (const id of [...pending.keys()]) settle(id)?.reject(new ReplyLostError('the client was closed before the reply came; the request was sent'));
      await ch.close().catch(() => undefined);
    },
  };
}
