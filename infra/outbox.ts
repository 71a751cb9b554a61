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

/** One event as a `task` row, for `enqueue` or for a caller that writes it inside a statement of its own. */
export type TaskRow = Readonly<{ event: OutboundEvent; envelope: Envelope; due: Date; held: boolean }>;

export function taskRow(e: OutboundEvent, now: Date, holdMs = 0): TaskRow {
  return { event: e, envelope: { id: e.messageId ?? randomUUID(), timestamp: now.getTime(), data: e.data }, due: new Date(now.getTime() + holdMs), held: holdMs > 0 };
}

/** The columns a `task` insert sets from a row (`state` and the times aside), and their parameters in that order. */
export const TASK_COLUMNS = 'user_id, topic, message_id, message, next_attempt_at';
export const taskParams = (r: TaskRow): unknown[] => [r.event.userId, r.event.topic, r.envelope.id, JSON.stringify(r.envelope), r.due];

/** The written task, once its row id is known. */
export const enqueuedTask = (r: TaskRow, id: string): EnqueuedTask => ({ id, messageId: r.envelope.id, topic: r.event.topic, envelope: r.envelope, held: r.held });

/**
 * Writes one `task` row per event inside `tx`. Returns the rows actually inserted: an event whose
 * message id is already there is skipped (ON CONFLICT DO NOTHING). With `holdMs`, the rows are due
 * only after that long: the writer publishes them itself right after commit (`publishNow`) without
 * claiming them first, and the cron relay takes over only if it never does (a crash).
 */
export async function enqueue(tx: Tx, events: readonly OutboundEvent[], now: Date, holdMs = 0): Promise<EnqueuedTask[]> {
  const out: EnqueuedTask[] = [];
  for (const e of events) {
    const row = taskRow(e, now, holdMs);
    const { rows } = await sql<{ id: string }>(
      tx,
      `INSERT INTO task (${TASK_COLUMNS}, state, create_time, update_time)
       VALUES ($1, $2, $3, $4, $5, 'create', $6, $6)
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id`,
      [...taskParams(row), now],
    );
    if (rows[0]) out.push(enqueuedTask(row, String(rows[0].id)));
  }
  return out;
}
