import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, ConsumeMessage, MessageProperties, Options } from 'amqplib';
import { TransientError } from '../errors';
import type { Logger } from '../log';
import { DEAD_LETTER_QUEUE, PARK_EXCHANGE } from '../topology';
import { injectTraceHeaders } from '../trace-context';

export class UnroutableError extends Error {}

const CONFIRM_TIMEOUT_MS = 10_000;

/**
 * Publishing on a confirm channel: every publish waits for the broker's confirm (with a quorum
 * queue, the confirm comes once a quorum of its replicas has the message). The channel is replaced
 * after every reconnect (`attach`); while there is none, a publish is a broker outage.
 */
export type Publisher = Readonly<{
  /** Rejects on nack or timeout (TransientError `broker`) and on return (unroutable, with `mandatory`). */
  publish(exchange: string, routingKey: string, content: Buffer, props: Options.Publish): Promise<void>;
  /** Sends a request/reply answer to `msg.properties.replyTo`; false when there is nobody to answer. */
  reply(msg: ConsumeMessage, body: unknown): Promise<boolean>;
  /** Copies `msg` to the dead-letter queue with `x-error` (and an `x-death` entry) and returns once confirmed. */
  deadLetter(msg: ConsumeMessage, queue: string, code: string, reason: string): Promise<void>;
  /** Copies `msg` to the park queue, to come back to `queue` later; `failures` is carried in `x-aq-failures`. */
  park(msg: ConsumeMessage, queue: string, failures: number, why: string): Promise<void>;
  attach(ch: ConfirmChannel | undefined): void;
  connected(): boolean;
}>;

export function publisher(log: Logger): Publisher {
  let ch: ConfirmChannel | undefined;
  let returned = new Set<string>();

  const p: Publisher = {
    attach(next) {
      ch = next;
      if (!next) return;
      const seen = new Set<string>();
      next.on('return', (r: ConsumeMessage) => r.properties.messageId && seen.add(String(r.properties.messageId)));
      next.on('close', () => ch === next && (ch = undefined));
      returned = seen;
    },
    connected: () => ch !== undefined,

    publish(exchange, routingKey, content, props) {
      if (!ch) return Promise.reject(new TransientError('broker', 'outage', 'broker: not connected'));
      return confirmedPublish(ch, returned, exchange, routingKey, content, props);
    },

    async reply(msg, body) {
      const { replyTo, correlationId } = msg.properties;
      if (!replyTo) return false;
      try {
        await p.publish('', String(replyTo), Buffer.from(JSON.stringify(body)), { correlationId, contentType: 'application/json', contentEncoding: 'utf-8', mandatory: true });
        return true;
      } catch (err) {
        if (!(err instanceof UnroutableError)) throw err;
        // The caller went away; the effect stands and a retried request finds it.
        log.warn({ replyTo, correlationId }, 'reply undeliverable: the caller queue is gone');
        return false;
      }
    },

    async deadLetter(msg, queue, code, reason) {
      await p.publish('', DEAD_LETTER_QUEUE, msg.content, { ...republishProperties(msg.properties), headers: deadLetterHeaders(msg, queue, code, reason) });
    },

    async park(msg, queue, failures, why) {
      const headers = { ...(msg.properties.headers ?? {}), 'x-aq-failures': failures, 'x-aq-parked': `${why}`.slice(0, 200) };
      await p.publish(PARK_EXCHANGE, queue, msg.content, { ...republishProperties(msg.properties), headers, mandatory: true });
    },
  };
  return p;
}

/** Publishes on `channel` and settles on its confirm; `returned` holds the message ids the broker returned (unroutable). */
function confirmedPublish(channel: ConfirmChannel, returned: Set<string>, exchange: string, routingKey: string, content: Buffer, props: Options.Publish): Promise<void> {
  const messageId = props.messageId ?? randomUUID();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TransientError('broker', 'outage', 'broker: publish confirm timed out')), CONFIRM_TIMEOUT_MS);
    try {
      channel.publish(exchange, routingKey, content, { ...props, messageId, headers: traced(props.headers) }, (err) => {
        clearTimeout(timer);
        if (err) return reject(new TransientError('broker', 'outage', `broker: nacked the publish: ${err.message ?? err}`));
        if (returned.delete(messageId)) return reject(new UnroutableError(`unroutable: no queue bound to ${exchange || '(default)'} / ${routingKey}`));
        resolve();
      });
    } catch (err) {
      clearTimeout(timer);
      reject(new TransientError('broker', 'outage', `broker: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/**
 * The headers with the active span's `traceparent` (a reply continues the request's trace); a copy
 * that carries one already (dead letter, park, a relayed event) keeps its own.
 */
function traced(headers: Options.Publish['headers']): Options.Publish['headers'] {
  if (headers?.traceparent !== undefined) return headers;
  const out = injectTraceHeaders(headers ?? {});
  return out.traceparent === undefined ? headers : out;
}

/** The headers of a dead-lettered copy: the reason in `x-error`, an `x-death` entry as the broker would add one. */
function deadLetterHeaders(msg: ConsumeMessage, queue: string, code: string, reason: string): Record<string, unknown> {
  const headers = { ...(msg.properties.headers ?? {}) };
  const previous = Array.isArray(headers['x-death']) ? headers['x-death'] : [];
  headers['x-error'] = `${code}: ${reason}`.slice(0, 1_000);
  headers['x-original-queue'] = queue;
  headers['x-death'] = [
    { count: 1, reason: 'rejected', queue, time: { '!': 'timestamp', value: Math.floor(Date.now() / 1000) }, exchange: msg.fields.exchange, 'routing-keys': [msg.fields.routingKey] },
    ...previous,
  ];
  delete headers['x-aq-failures'];
  return headers;
}

/** The properties of a delivery to publish it again (dead-lettering, parking, requeueing), persistent. */
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
