import { sql, type Tx } from './db';

/**
 * Inbox for event consumers (publishing is at least once): records `messageId` for `consumer` in
 * the caller's transaction and says whether it is new. A false means: already applied, skip.
 */
export async function firstDelivery(tx: Tx, consumer: string, messageId: string): Promise<boolean> {
  const { count } = await sql(tx, 'INSERT INTO processed_message (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [consumer, messageId]);
  return count === 1;
}
