import type { ConsumeMessage } from 'amqplib';
import { PermanentError, isTransient } from '../errors';
import type { Logger } from '../log';
import type { Handler } from './consumer';
import type { Publisher } from './publisher';

/** Contract §5.1. */
export type Reply = Readonly<{ code: string; info: string; data?: unknown }>;

export type RequestReply<T> = Readonly<{
  queue: string;
  parse(msg: ConsumeMessage): T;
  run(req: T, log: Logger): Promise<Reply>;
  /** Request/reply only (partake, query, history): a message without `replyTo` is dead-lettered. */
  replyRequired: boolean;
}>;

/**
 * The request/reply adapter of the consumer: every outcome of a request in one place. Invalid:
 * reply `0002`, or dead-letter when nobody can be told. Transient: rethrown, the consumer policy
 * holds or parks it. Any other failure has rolled back: reply `0001`. An undeliverable reply is
 * logged and the message still acked: the effect stands, and a retried request finds it.
 */
export function requestReply<T>(pub: Pick<Publisher, 'reply'>, r: RequestReply<T>): Handler {
  return async (msg, log) => {
    const replyTo = msg.properties.replyTo;
    let req: T;
    try {
      req = r.parse(msg);
    } catch (err) {
      if (!(err instanceof PermanentError) || !replyTo) throw err;
      log.info({ code: err.code, reason: err.reason }, 'invalid request refused');
      await pub.reply(msg, { code: '0002', info: err.reason });
      return;
    }
    if (r.replyRequired && !replyTo) throw new PermanentError('NO_REPLY_TO', `${r.queue} is request/reply: the message needs replyTo`);
    let reply: Reply;
    try {
      reply = await r.run(req, log);
    } catch (err) {
      if (isTransient(err) || !replyTo) throw err;
      log.error({ err }, 'request failed, nothing changed');
      reply = { code: '0001', info: 'unexpected failure, nothing was changed' };
    }
    if (replyTo) await pub.reply(msg, reply);
    else if (reply.code !== '0000') log.info({ req, code: reply.code, info: reply.info }, 'request refused, no replyTo');
  };
}
