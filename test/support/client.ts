import type { ConsumeMessage, Options } from 'amqplib';
import { connect } from '../../infra/client';
import { DEAD_LETTER_QUEUE } from '../../infra/topology';

export type Received = Readonly<{ key: string; props: ConsumeMessage['properties']; body: any; data: any; raw: Buffer }>;

/**
 * A caller's view of the broker for tests, on the package's client (infra/client): publish to a
 * queue, request/reply, every event on `activity.events` (each copy: no dedupe, no schema check,
 * so tests see duplicates and malformed events), and the dead-letter queue.
 */
export type TestClient = Readonly<{
  publish(queue: string, payload: unknown, o?: { raw?: string | Buffer; messageId?: string | null; envelope?: boolean; props?: Options.Publish }): Promise<string | undefined>;
  rpc(queue: string, payload: unknown, o?: { raw?: string | Buffer; timeoutMs?: number; messageId?: string }): Promise<Received>;
  events: Received[];
  waitEvent(pred: (e: Received) => boolean, timeoutMs?: number, what?: string): Promise<Received>;
  deadLetters(): Promise<Received[]>;
  waitDeadLetter(pred: (e: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}>;

export async function connectClient(amqpUrl: string): Promise<TestClient> {
  const c = await connect({ url: amqpUrl, validate: false, timeoutMs: 5_000, name: 'activity-quota:test-client' });
  const events: Received[] = [];
  const dead: Received[] = [];
  await c.subscribe(['#'], (_e, d) => void events.push(received(d.routingKey, d.properties, d.raw)), { dedupe: false, validate: false });
  const get = await c.connection.createChannel();
  get.on('error', () => undefined);

  const client: TestClient = {
    // Not mandatory: tests publish to queues a worker declares later, as a caller might.
    publish: (queue, payload, o = {}) => c.publish(queue, payload, { ...o, mandatory: false }),
    async rpc(queue, payload, o = {}) {
      const r = await c.request(queue, payload, { raw: o.raw, timeoutMs: o.timeoutMs ?? 5_000, mandatory: false, messageId: o.messageId });
      return received(queue, r.properties, r.raw);
    },
    events,
    async waitEvent(pred, timeoutMs = 10_000, what = 'event') {
      return waitFor(() => events.find(pred), timeoutMs, what);
    },
    async deadLetters() {
      for (;;) {
        const m = await get.get(DEAD_LETTER_QUEUE, { noAck: true });
        if (!m) return dead;
        dead.push(received(m.fields.routingKey, m.properties, m.content));
      }
    },
    async waitDeadLetter(pred, timeoutMs = 10_000) {
      return waitFor(async () => (await client.deadLetters()).find(pred), timeoutMs, 'dead letter');
    },
    close: () => c.close(),
  };
  return client;
}

function received(key: string, props: ConsumeMessage['properties'], raw: Buffer): Received {
  let body: any;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    body = undefined;
  }
  const data = body && typeof body === 'object' && 'data' in body ? body.data : body;
  return { key, props, body, data, raw };
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
