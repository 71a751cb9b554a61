import { randomUUID } from 'node:crypto';
import amqplib, { type ChannelModel, type ConfirmChannel, type Channel, type ConsumeMessage, type Options } from 'amqplib';
import { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE } from '../../infra/topology';

export type Received = Readonly<{ key: string; props: ConsumeMessage['properties']; body: any; data: any; raw: Buffer }>;

/**
 * A caller's view of the broker for tests: publish to a queue, request/reply, every event on
 * `activity.events`, and the dead-letter queue. Only the public contract; no project internals.
 */
export type TestClient = Readonly<{
  publish(queue: string, payload: unknown, o?: { raw?: string | Buffer; messageId?: string | null; envelope?: boolean; props?: Options.Publish }): Promise<string | undefined>;
  rpc(queue: string, payload: unknown, o?: { raw?: string | Buffer; timeoutMs?: number }): Promise<Received>;
  events: Received[];
  waitEvent(pred: (e: Received) => boolean, timeoutMs?: number, what?: string): Promise<Received>;
  deadLetters(): Promise<Received[]>;
  waitDeadLetter(pred: (e: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}>;

export async function connectClient(amqpUrl: string): Promise<TestClient> {
  const conn: ChannelModel = await amqplib.connect(amqpUrl);
  conn.on('error', () => undefined);
  const pub: ConfirmChannel = await conn.createConfirmChannel();
  const sub: Channel = await conn.createChannel();
  pub.on('error', () => undefined);
  sub.on('error', () => undefined);
  await sub.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
  const events: Received[] = [];
  const dead: Received[] = [];
  const pending = new Map<string, (r: Received) => void>();
  const evq = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
  await sub.bindQueue(evq, EVENTS_EXCHANGE, '#');
  await sub.consume(evq, (m) => m && events.push(received(m)), { noAck: true });
  const replyq = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
  await sub.consume(replyq, (m) => {
    if (!m) return;
    const f = pending.get(String(m.properties.correlationId));
    pending.delete(String(m.properties.correlationId));
    f?.(received(m));
  }, { noAck: true });

  const client: TestClient = {
    async publish(queue, payload, o = {}) {
      const messageId = o.messageId === null ? undefined : (o.messageId ?? randomUUID());
      const body = o.raw !== undefined ? Buffer.from(o.raw) : Buffer.from(JSON.stringify(o.envelope ? { id: messageId ?? randomUUID(), timestamp: Date.now(), data: payload } : payload));
      await new Promise<void>((resolve, reject) =>
        pub.sendToQueue(queue, body, { persistent: true, contentType: 'application/json', messageId, ...o.props }, (err) => (err ? reject(err) : resolve())),
      );
      return messageId;
    },
    async rpc(queue, payload, o = {}) {
      const correlationId = randomUUID();
      const reply = new Promise<Received>((resolve, reject) => {
        const t = setTimeout(() => (pending.delete(correlationId), reject(new Error(`no reply from ${queue} within ${o.timeoutMs ?? 5000} ms`))), o.timeoutMs ?? 5000);
        pending.set(correlationId, (r) => (clearTimeout(t), resolve(r)));
      });
      await client.publish(queue, payload, { raw: o.raw, props: { replyTo: replyq, correlationId } });
      return reply;
    },
    events,
    async waitEvent(pred, timeoutMs = 10_000, what = 'event') {
      return waitFor(() => events.find(pred), timeoutMs, what);
    },
    async deadLetters() {
      for (;;) {
        const m = await sub.get(DEAD_LETTER_QUEUE, { noAck: true });
        if (!m) return dead;
        dead.push(received(m));
      }
    },
    async waitDeadLetter(pred, timeoutMs = 10_000) {
      return waitFor(async () => (await client.deadLetters()).find(pred), timeoutMs, 'dead letter');
    },
    async close() {
      await conn.close().catch(() => undefined);
    },
  };
  return client;
}

function received(m: Pick<ConsumeMessage, 'content' | 'properties'> & { fields: { routingKey: string } }): Received {
  let body: any;
  try {
    body = JSON.parse(m.content.toString('utf8'));
  } catch {
    body = undefined;
  }
  const data = body && typeof body === 'object' && 'data' in body ? body.data : body;
  return { key: m.fields.routingKey, props: m.properties, body, data, raw: m.content };
}

/** Polls `fn` until it returns something truthy; throws naming `what` at the deadline. */
export async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
