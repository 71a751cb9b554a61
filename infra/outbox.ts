import { randomUUID } from 'node:crypto';
import type { Topic } from './topology';
import { sql, type Tx } from './db';

/** An event to publish, written in the transaction of its cause (contract §6). */
export type OutboundEvent = Readonly<{
  topic: Topic;
  userId: string;
  data: Record<string, unknown>;
  /** A deterministic id turns a second enqueue of the same event into a no-op; default a fresh uuid. */
  messageId?: string;
}>;

/** The published body: envelope `id` = AMQP `messageId` = `task.message_id`. */
export type Envelope = Readonly<{ id: string; timestamp: number; data: Record<string, unknown> }>;

export type EnqueuedTask = Readonly<{ id: string; messageId: string; topic: Topic }>;

/**
 * Writes one `task` row per event inside `tx`. Returns the rows actually inserted: an event whose
 * message id is already there is skipped (ON CONFLICT DO NOTHING).
 */
export async function enqueue(tx: Tx, events: readonly OutboundEvent[], now: Date): Promise<EnqueuedTask[]> {
  const out: EnqueuedTask[] = [];
  for (const e of events) {
    const envelope: Envelope = { id: e.messageId ?? randomUUID(), timestamp: now.getTime(), data: e.data };
    const { rows } = await sql<{ id: string }>(
      tx,
      `INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time)
       VALUES ($1, $2, $3, $4, 'create', $5, $5, $5)
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id`,
      [e.userId, e.topic, envelope.id, JSON.stringify(envelope), now],
    );
    if (rows[0]) out.push({ id: String(rows[0].id), messageId: envelope.id, topic: e.topic });
  }
  return out;
}
