import type { ConsumeMessage } from 'amqplib';
import * as assert from 'uvu/assert';
import { PermanentError } from '../../infra/errors';

/** A delivery as a parser sees it: `body` as JSON, or `raw` bytes as they are. */
export const aDelivery = (body: unknown, raw?: string): ConsumeMessage => ({ content: Buffer.from(raw ?? JSON.stringify(body)), properties: { headers: {} }, fields: {} }) as unknown as ConsumeMessage;

/** The reason of the PermanentError `fn` throws; fails the test when it throws anything else or nothing. */
export function permanentReason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, PermanentError);
    return (err as PermanentError).reason;
  }
  throw new Error('expected a PermanentError');
}
