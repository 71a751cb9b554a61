import type amqplib from 'amqplib';
import type { Channel, ConsumeMessage } from 'amqplib';
import { connect } from '../infra/client';
import { now } from './support';

export type Reply = Readonly<{ body: any; at: number }>;

/**
 * The caller's side of the broker, on the package's client (infra/client) with its checks off
 * (no reply schema check, a plain confirmed publish), so that it costs what a careful amqplib
 * caller costs: one connection, one confirm channel for publishing and replies, one channel for
 * events (no-ack). Used alike for the pipeline and for the broker ceiling.
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
  const c = await connect({ url, validate: false, noDelay: process.env.BENCH_NODELAY !== '0', name: 'activity-quota:bench' });
  const sub = await c.connection.createChannel();
  sub.on('error', () => undefined);
  return {
    publish: async (exchange, key, payload, props = {}) => void (await c.publish(key, payload, { exchange, mandatory: false, props })),
    async rpc(queue, payload, timeoutMs = 10_000) {
      const r = await c.request(queue, payload, { timeoutMs, mandatory: false });
      return { body: r.body, at: r.at }; // taken on arrival, on the clock of now()
    },
    async listen(exchange, keys, onMessage) {
      const q = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
      for (const k of keys) await sub.bindQueue(q, exchange, k);
      await sub.consume(q, (m) => m && onMessage(m, now()), { noAck: true });
      return q;
    },
    sub,
    close: () => c.close(),
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
