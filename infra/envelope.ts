import type { ConsumeMessage } from 'amqplib';
import { idProblem } from '../domain/ids';
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

/** Field readers for parse(): each throws a PermanentError naming the field. */
export const field = {
  userId(o: Record<string, unknown>, name = 'userId'): string {
    return field.identifier(o, name);
  },
  /** A caller's id (`userId`, `outBusinessNo`, `behavior`): any printable Unicode, 1–128 characters (domain/ids.ts). */
  identifier(o: Record<string, unknown>, name: string): string {
    const problem = idProblem(o[name]);
    if (problem !== undefined) throw invalid(o[name] === undefined ? `${name} is missing` : `${name} ${problem}`);
    return o[name] as string;
  },
  string(o: Record<string, unknown>, name: string, max = 128): string {
    const v = o[name];
    if (typeof v !== 'string' || !v) throw invalid(`${name} must be a non-empty string`);
    if (v.length > max) throw invalid(`${name} is over ${max} characters`);
    return v;
  },
  /** A positive whole JSON number (a string is refused, as the contract types ids as numbers). */
  id(o: Record<string, unknown>, name: string): number {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalid(`${name} must be a positive whole number`);
    return v;
  },
};

export const invalid = (reason: string) => new PermanentError('INVALID_MESSAGE', reason);
