import { countLiteral, type Db, sql, type Tx } from './db';

/**
 * Inbox for event consumers (publishing is at least once): records `messageId` for `consumer` in
 * the caller's transaction and says whether it is new. A false means: already applied, skip.
 */
export async function firstDelivery(tx: Tx, consumer: string, messageId: string): Promise<boolean> {
  const { count } = await sql(tx, 'INSERT INTO processed_message (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [consumer, messageId]);
  return count === 1;
}

/**
 * Retention: deletes up to `batch` inbox rows older than `olderThanSeconds` (by `processed_at`,
 * indexed); returns how many. The rows are deleted by their physical address (`ctid`), which
 * PostgreSQL fetches directly: joined back by key, the generic plan made on a new table hashed the
 * old rows against a read of the whole inbox (test/int/plans.int.test.ts). Inbox rows are never
 * updated, so an address read in this statement's snapshot is the row's.
 */
export async function purgeProcessed(ds: Db, olderThanSeconds: number, batch: number): Promise<number> {
  const { count } = await sql(
    ds,
    `DELETE FROM processed_message WHERE ctid = ANY (ARRAY(SELECT ctid FROM processed_message
       WHERE processed_at < now() - $1::int * interval '1 second' ORDER BY processed_at LIMIT ${countLiteral(batch)}))`,
    [olderThanSeconds],
  );
  return count;
}
