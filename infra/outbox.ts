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

/** A written task; `envelope` is what gets published; `held` = reserved for the writer's own fast path. */
export type EnqueuedTask = Readonly<{ id: string; messageId: string; topic: Topic; envelope?: Envelope; held?: boolean }>;

/**
 * Writes one `task` row per event inside `tx`. Returns the rows actually inserted: an event whose
 * message id is already there is skipped (ON CONFLICT DO NOTHING). With `holdMs`, the rows are due
 * only after that long: the writer publishes them itself right after commit (`publishNow`) without
 * claiming them first, and the cron relay takes over only if it never does (a crash).
 */
export async function enqueue(tx: Tx, events: readonly OutboundEvent[], now: Date, holdMs = 0): Promise<EnqueuedTask[]> {
  const out: EnqueuedTask[] = [];
  const due = new Date(now.getTime() + holdMs);
  for (const e of events) {
    const envelope: Envelope = { id: e.messageId ?? randomUUID(), timestamp: now.getTime(), data: e.data };
    const { rows } = await sql<{ id: string }>(
      tx,
      `INSERT INTO task (user_id, topic, message_id, message, state, next_attempt_at, create_time, update_time)
       VALUES ($1, $2, $3, $4, 'create', $6, $5, $5)
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id`,
      [e.userId, e.topic, envelope.id, JSON.stringify(envelope), now, due],
    );
    if (rows[0]) out.push({ id: String(rows[0].id), messageId: envelope.id, topic: e.topic, envelope, held: holdMs > 0 });
  }
  return out;
}
