import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { identifier, reasonOf, text, wholeId } from './contract/fields';
import { PermanentError } from './errors';

/** Largest body a worker parses; anything bigger is dead-lettered unread. */
export const MAX_BODY_BYTES = 64 * 1024;

export type Inbound = Readonly<{ messageId: string | undefined; timestamp: number | undefined; data: Record<string, unknown> }>;

/**
 * A body is the bare payload or the envelope `{id, timestamp, data}` (contract §5); the message id
 * is the envelope's `id`, else the AMQP `messageId`. Anything else is a PermanentError.
 */
export function readBody(msg: ConsumeMessage): Inbound {
  if (msg.content.length > MAX_BODY_BYTES) throw new PermanentError('INVALID_MESSAGE', `body of ${msg.content.length} bytes is over the ${MAX_BODY_BYTES}-byte limit`);
  let text: string;
  try {
    text = UTF8.decode(msg.content);
  } catch {
    // Decoding leniently would store U+FFFD in place of what the caller sent: ids are kept verbatim.
    throw new PermanentError('INVALID_MESSAGE', 'body is not valid UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new PermanentError('INVALID_JSON', `body is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(body)) throw new PermanentError('INVALID_MESSAGE', 'body is not a JSON object');
  const amqpId = msg.properties.messageId ? String(msg.properties.messageId) : undefined;
  if ('data' in body && isObject(body.data) && ('id' in body || 'timestamp' in body)) {
    const id = typeof body.id === 'string' && body.id ? body.id : amqpId;
    return { messageId: id, timestamp: typeof body.timestamp === 'number' ? body.timestamp : undefined, data: body.data };
  }
  return { messageId: amqpId, timestamp: undefined, data: body };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Field readers for a hand-written parse(), on the contract's rules (infra/contract/fields.ts); each
 * throws a PermanentError naming the field. New parsers use the schemas of infra/contract instead.
 */
export const field = {
  userId: (o: Record<string, unknown>, name = 'userId'): string => one(o, name, identifier(name)),
  string: (o: Record<string, unknown>, name: string, max = 128): string => one(o, name, text(max, name)),
  /** A positive whole JSON number (a string is refused, as the contract types ids as numbers). */
  id: (o: Record<string, unknown>, name: string): number => one(o, name, wholeId(name)),
};

function one<T>(o: Record<string, unknown>, name: string, schema: z.ZodType<T>): T {
  const r = z.object({ [name]: schema }).safeParse(o);
  if (!r.success) throw invalid(reasonOf(r.error));
  return (r.data as Record<string, T>)[name]!;
}

export const invalid = (reason: string) => new PermanentError('INVALID_MESSAGE', reason);
