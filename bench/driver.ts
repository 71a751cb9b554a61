import { randomUUID } from 'node:crypto';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { now } from './support';

export type Reply = Readonly<{ body: any; at: number }>;

/**
 * The caller's side of the broker, as cheap as amqplib allows: one connection, one confirm channel
 * for publishing (persistent, waits for the confirm like a careful producer), one channel for
 * replies and events (no-ack). Used alike for the pipeline and for the broker ceiling.
 */
export type Driver = Readonly<{
  publish(exchange: string, key: string, payload: unknown, props?: amqplib.Options.Publish): Promise<void>;
  /** Publishes with `replyTo` + `correlationId`; resolves with the reply, rejects after `timeoutMs`. */
  rpc(queue: string, payload: unknown, timeoutMs?: number): Promise<Reply>;
  /** An exclusive queue bound to `exchange` with `keys`; `onMessage` sees every delivery with its arrival time. */
  listen(exchange: string, keys: readonly string[], onMessage: (m: ConsumeMessage, at: number) => void): Promise<string>;
  sub: Channel;
  close(): Promise<void>;
}>;

export async function connectDriver(url: string): Promise<Driver> {
  const conn: ChannelModel = await amqplib.connect(url, { noDelay: process.env.BENCH_NODELAY !== '0' });
  conn.on('error', () => undefined);
  const pub: ConfirmChannel = await conn.createConfirmChannel();
  const sub: Channel = await conn.createChannel();
  pub.on('error', () => undefined);
  sub.on('error', () => undefined);
  const pending = new Map<string, { resolve(r: Reply): void; timer: NodeJS.Timeout }>();
  const replyq = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
  await sub.consume(replyq, (m) => {
    if (!m) return;
    const id = String(m.properties.correlationId);
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    let body: any;
    try {
      body = JSON.parse(m.content.toString('utf8'));
    } catch {
      body = undefined;
    }
    p.resolve({ body, at: now() });
  }, { noAck: true });

  const publish: Driver['publish'] = (exchange, key, payload, props = {}) =>
    new Promise<void>((resolve, reject) =>
      pub.publish(exchange, key, Buffer.from(JSON.stringify(payload)), { persistent: true, contentType: 'application/json', messageId: randomUUID(), ...props }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );

  return {
    publish,
    rpc(queue, payload, timeoutMs = 10_000) {
      const correlationId = randomUUID();
      const reply = new Promise<Reply>((resolve, reject) => {
        const timer = setTimeout(() => (pending.delete(correlationId), reject(new Error(`no reply from ${queue} within ${timeoutMs} ms`))), timeoutMs);
        pending.set(correlationId, { resolve, timer });
      });
      return publish('', queue, payload, { replyTo: replyq, correlationId }).then(() => reply);
    },
    async listen(exchange, keys, onMessage) {
      const q = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
      for (const k of keys) await sub.bindQueue(q, exchange, k);
      await sub.consume(q, (m) => m && onMessage(m, now()), { noAck: true });
      return q;
    },
    sub,
    async close() {
      for (const p of pending.values()) clearTimeout(p.timer);
      await conn.close().catch(() => undefined);
    },
  };
}

/** Runs `callers` loops until `until()` says stop; each loop calls `step(caller, i)`. */
export async function runCallers(callers: number, until: () => boolean, step: (caller: number, i: number) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; !until(); i++) await step(c, i);
    }),
  );
}
