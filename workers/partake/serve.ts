import type { ConsumeMessage } from 'amqplib';
import type { Broker } from '../../infra/amqp';
import { PermanentError, isTransient } from '../../infra/errors';
import type { Logger } from '../../infra/log';

/** Contract §5.1. */
export type Reply = Readonly<{ code: string; info: string; data?: unknown }>;

export const success = (data: unknown): Reply => ({ code: '0000', info: 'success', data });
export const refused = (r: Readonly<{ code: string; info: string }>): Reply => ({ code: r.code, info: r.info });

export type Replier = Readonly<{ log: Logger; broker: Pick<Broker, 'reply'> }>;

/**
 * Every outcome of a request in one place. Invalid: reply `0002`, or dead-letter when nobody can
 * be told. Transient: rethrow, the consumer loop retries. Other failures rolled back: reply `0001`.
 * An undeliverable reply is logged by the broker and the message still acked: the effect stands.
 */
export async function serve<T>(d: Replier, msg: ConsumeMessage, queue: string, parse: (m: ConsumeMessage) => T, run: (req: T) => Promise<Reply>, replyRequired: boolean): Promise<void> {
  const replyTo = msg.properties.replyTo;
  let req: T;
  try {
    req = parse(msg);
  } catch (err) {
    if (!(err instanceof PermanentError) || !replyTo) throw err;
    d.log.info({ queue, code: err.code, reason: err.reason }, 'invalid request refused');
    await d.broker.reply(msg, { code: '0002', info: err.reason });
    return;
  }
  if (replyRequired && !replyTo) throw new PermanentError('NO_REPLY_TO', `${queue} is request/reply: the message needs replyTo`);
  let reply: Reply;
  try {
    reply = await run(req);
  } catch (err) {
    if (isTransient(err) || !replyTo) throw err;
    d.log.error({ err, queue }, 'request failed, nothing changed');
    reply = { code: '0001', info: 'unexpected failure, nothing was changed' };
  }
  if (replyTo) await d.broker.reply(msg, reply);
  else if (reply.code !== '0000') d.log.info({ queue, req, code: reply.code, info: reply.info }, 'request refused, no replyTo');
}
