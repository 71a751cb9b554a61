import type { Tx } from '../infra/db';
import { enqueue, insertTasks, taskRow, type EnqueuedTask, type OutboundEvent, type TaskRow } from '../infra/outbox';
import type { Relay } from '../infra/relay';
import type { Shard } from '../infra/shards';

/**
 * The outbox as a handler uses it, and nothing more: events written in the handler's transaction
 * (by `enqueue`, or by the handler's own statement from `hold`'s row), published right after commit.
 */
export type OutboxPort = Readonly<{
  /** The task row of an event the handler writes in a statement of its own; reserved for its fast path. */
  hold(db: Shard, e: OutboundEvent, now: Date): Promise<TaskRow>;
  enqueue(tx: Tx, db: Shard, events: readonly OutboundEvent[], now: Date): Promise<EnqueuedTask[]>;
  /** `hold`'s rows, of several causes, written in one statement. */
  insert(tx: Tx, db: Shard, rows: readonly TaskRow[]): Promise<EnqueuedTask[]>;
  /** After commit; never throws (what it does not publish, the relay does). */
  publish(db: Shard, tasks: readonly EnqueuedTask[]): Promise<void>;
}>;

export function outboxPort(relay: Relay): OutboxPort {
  return {
    hold: async (_db, e, now) => taskRow(e, now, relay.holdMs),
    enqueue: (tx, _db, events, now) => enqueue(tx, events, now, relay.holdMs),
    insert: (tx, _db, rows) => insertTasks(tx, rows),
    publish: (db, tasks) => relay.publishNow(db.ds, tasks),
  };
}
