import { randomUUID } from 'node:crypto';
import type { OutboxSettings } from './config';
import { countLiteral, type Db, sql, type Tx } from './db';
import type { Topic } from './topology';
import { columnsOf } from './split-tables';
import { traceFields, type TraceFields } from './trace-context';

/**
 * Every statement on the `task` table (the outbox, contract §6): the insert (alone or as a CTE of a
 * caller's statement), the relay's claims and outcomes, replay, and the reads of the CLI and the
 * metrics. A task's state changes only here: grep `UPDATE task`.
 */

/** An event to publish, written in the transaction of its cause (contract §6). */
export type OutboundEvent = Readonly<{
  topic: Topic;
  userId: string;
  data: Record<string, unknown>;
  /** A deterministic id turns a second enqueue of the same event into a no-op; default a fresh uuid. */
  messageId?: string;
}>;

/**
 * The task's `message`: the published body `{id, timestamp, data}` (envelope `id` = AMQP `messageId`
 * = `task.message_id`) and the W3C trace context of its cause (`traceparent`, `tracestate`), which
 * the relay moves into the AMQP headers: the event continues the trace of the message that caused it.
 */
export type Envelope = Readonly<{ id: string; timestamp: number; data: Record<string, unknown> } & TraceFields>;

/** A written task; `envelope` is what gets published; `held` = reserved for the writer's own fast path. */
export type EnqueuedTask = Readonly<{ id: string; messageId: string; topic: Topic; envelope?: Envelope; held?: boolean }>;

/** One event as a `task` row, for `enqueue` or for a caller that writes it inside a statement of its own. */
export type TaskRow = Readonly<{ event: OutboundEvent; envelope: Envelope; due: Date; held: boolean }>;

/** Called in the cause's context (its span active): the envelope records its trace. */
export function taskRow(e: OutboundEvent, now: Date, holdMs = 0): TaskRow {
  return { event: e, envelope: { id: e.messageId ?? randomUUID(), timestamp: now.getTime(), data: e.data, ...traceFields() }, due: new Date(now.getTime() + holdMs), held: holdMs > 0 };
}

/** The columns a `task` insert sets from a row (`state` and the times aside), and their parameters in that order. */
const TASK_COLUMNS = 'user_id, topic, message_id, message, next_attempt_at';
export const taskParams = (r: TaskRow): unknown[] => [r.event.userId, r.event.topic, r.envelope.id, JSON.stringify(r.envelope), r.due];

/**
 * The task insert as the last CTE of a caller's own statement (one round trip with its cause): one
 * row per row of `source`, the row's `taskParams` from `$first` on, create and update time `$now`.
 * It returns the new task's `id`, or nothing when the message id was already there.
 */
export function insertTaskFrom(source: string, first: number, now: number): string {
  const p = (i: number) => `$${first + i}`;
  return `INSERT INTO task (${TASK_COLUMNS}, state, create_time, update_time)
       SELECT ${p(0)}, ${p(1)}, ${p(2)}, ${p(3)}::jsonb, ${p(4)}, 'create', $${now}, $${now} FROM ${source}
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id`;
}

/** The written task, once its row id is known. */
export const enqueuedTask = (r: TaskRow, id: string): EnqueuedTask => ({ id, messageId: r.envelope.id, topic: r.event.topic, envelope: r.envelope, held: r.held });

/** `enqueue`'s statement (also run by the bench's database ceiling, bench/scenarios/ceiling-sql.ts). */
export const ENQUEUE_SQL = `INSERT INTO task (${TASK_COLUMNS}, state, create_time, update_time)
       VALUES ($1, $2, $3, $4, $5, 'create', $6, $6)
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id`;

/**
 * Writes one `task` row per event inside `tx`. Returns the rows actually inserted: an event whose
 * message id is already there is skipped (ON CONFLICT DO NOTHING). With `holdMs`, the rows are due
 * only after that long: the writer publishes them itself right after commit (the relay's
 * `publishNow`) without claiming them first, and the cron relay takes over only if it never does (a crash).
 */
export async function enqueue(tx: Tx, events: readonly OutboundEvent[], now: Date, holdMs = 0): Promise<EnqueuedTask[]> {
  const out: EnqueuedTask[] = [];
  for (const e of events) {
    const row = taskRow(e, now, holdMs);
    const { rows } = await sql<{ id: string }>(tx, ENQUEUE_SQL, [...taskParams(row), now]);
    if (rows[0]) out.push(enqueuedTask(row, String(rows[0].id)));
  }
  return out;
}

/** The column names `insertTaskRowsFrom`'s source has, in the order of `taskRowArrays`. */
export const TASK_ROW_NAMES = 'task_user_id, topic, message_id, message, due, at';

/** `$first::text[], …`: the typed parameters of `taskRowArrays`' six arrays from parameter `first` on, for an `unnest`. */
export const taskArrayParams = (first: number): string => ['text', 'text', 'text', 'jsonb', 'timestamptz', 'timestamptz'].map((t, k) => `$${first + k}::${t}[]`).join(', ');

/** A group's task rows as one array per column (`TASK_ROW_NAMES`): created when its envelope was stamped (`taskRow`'s now), as `enqueue` writes it. */
export const taskRowArrays = (rows: readonly TaskRow[]): unknown[][] =>
  columnsOf(
    rows.map((r) => [...taskParams(r), new Date(r.envelope.timestamp)]),
    6,
  );

/**
 * The task insert of many rows, as a statement or the CTE of a caller's own: one row per row of
 * `source`, whose columns are `TASK_ROW_NAMES`; it returns `id` (text) and `message_id` of the rows
 * inserted (none where the message id was already there).
 */
export function insertTaskRowsFrom(source: string): string {
  return `INSERT INTO task (${TASK_COLUMNS}, state, create_time, update_time)
       SELECT task_user_id, topic, message_id, message, due, 'create', at, at FROM ${source}
       ON CONFLICT (message_id) DO NOTHING
       RETURNING id::text, message_id`;
}

/**
 * `enqueue` for rows already built (`taskRow`), of any number of causes, in one statement: the rows
 * actually inserted, as `enqueue` answers them.
 */
export async function insertTasks(tx: Tx, rows: readonly TaskRow[]): Promise<EnqueuedTask[]> {
  if (!rows.length) return [];
  const { rows: inserted } = await sql<{ id: string; message_id: string }>(tx, insertTaskRowsFrom(`unnest(${taskArrayParams(1)}) AS r(${TASK_ROW_NAMES})`), taskRowArrays(rows));
  const ids = new Map(inserted.map((r) => [r.message_id, r.id]));
  return rows.flatMap((r) => {
    const id = ids.get(r.envelope.id);
    return id ? [enqueuedTask(r, id)] : [];
  });
}

/** A task a relay holds a claim (a lease) on, ready to publish. */
export type ClaimedTask = { id: string; topic: string; message_id: string; message: Envelope; attempts: number };
const CLAIMED_COLUMNS = 't.id::text AS id, t.topic, t.message_id, t.message, t.attempts';

/**
 * Claims due tasks in one short statement: SKIP LOCKED keeps concurrent relays apart, and the lease
 * (next_attempt_at pushed ahead) keeps them apart after the row locks are gone.
 */
export async function claimDue(ds: Db, s: Pick<OutboxSettings, 'batchSize' | 'leaseMs'>): Promise<ClaimedTask[]> {
  const { rows } = await sql<ClaimedTask>(
    ds,
    `WITH due AS (
       SELECT id FROM task WHERE state IN ('create', 'fail') AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE task t SET next_attempt_at = now() + $2 * interval '1 millisecond', update_time = now()
       FROM due WHERE t.id = due.id
     RETURNING ${CLAIMED_COLUMNS}`,
    [s.batchSize, s.leaseMs],
  );
  return rows;
}

/** From-states of a lookup by id, sent as parameters so that only the primary key serves it (docs/DESIGN.md, "Hot path"). */
const OPEN = ['create', 'fail'];
const CREATED = ['create'];

/**
 * Claims these tasks for the fast path, only those nobody holds: a claim sets next_attempt_at a lease
 * (>= 5 s) past update_time, while enqueue, replay and a release leave them equal. No clock
 * comparison, so no skew to allow for.
 */
export async function claimUnheld(ds: Db, ids: readonly string[], leaseMs: number): Promise<ClaimedTask[]> {
  const { rows } = await sql<ClaimedTask>(
    ds,
    `UPDATE task t SET next_attempt_at = now() + $2 * interval '1 millisecond', update_time = now()
      WHERE t.id = ANY($1::bigint[]) AND t.state = ANY($3::text[]) AND t.next_attempt_at <= t.update_time + interval '1 second'
      RETURNING ${CLAIMED_COLUMNS}`,
    [ids, leaseMs, CREATED],
  );
  return rows;
}

/** Published and confirmed: `completed`. */
export async function markCompleted(ds: Db, ids: readonly string[]): Promise<void> {
  await sql(ds, `UPDATE task SET state = 'completed', update_time = now() WHERE id = ANY($1::bigint[]) AND state = ANY($2::text[])`, [ids, OPEN]);
}

/**
 * Retention: deletes up to `batch` of the oldest completed tasks (by id, walking the primary key)
 * whose completion is older than `olderThanSeconds`; returns how many. Completed tasks are nearly all
 * of the oldest rows, so a statement reads about `batch` rows plus the open tasks (fail, dead) older
 * than them, whatever the table holds; a task completed late behind a younger one waits for the next
 * round that reaches it.
 */
export async function purgeCompleted(ds: Db, olderThanSeconds: number, batch: number): Promise<number> {
  const { count } = await sql(
    ds,
    `WITH oldest AS (SELECT id, update_time FROM task WHERE state = 'completed' ORDER BY id LIMIT ${countLiteral(batch)})
     DELETE FROM task t USING oldest o WHERE t.id = o.id AND o.update_time < now() - $1::int * interval '1 second'`,
    [olderThanSeconds],
  );
  return count;
}

/** Not published because the broker is away: no attempt counted, due again at once. */
export async function releaseTask(ds: Db, id: string, error: string): Promise<void> {
  await sql(ds, `UPDATE task SET next_attempt_at = now(), last_error = $2, update_time = now() WHERE id = $1 AND state = ANY($3::text[])`, [id, error, OPEN]);
}

export type FailedTask = Readonly<{ state: string; attempts: number; next_attempt_at: Date }>;

/** A failed publish: attempts + 1, backed off exponentially; past the limit the task is `dead`. */
export async function failTask(ds: Db, id: string, error: string, s: OutboxSettings): Promise<FailedTask | undefined> {
  const { rows } = await sql<FailedTask>(
    ds,
    `UPDATE task SET attempts = attempts + 1,
            state = CASE WHEN attempts + 1 >= $3 THEN 'dead' ELSE 'fail' END,
            last_error = $2,
            next_attempt_at = now() + LEAST($5::float8, $4::float8 * power(2, attempts)) * interval '1 millisecond',
            update_time = now()
      WHERE id = $1 AND state = ANY($6::text[])
      RETURNING state, attempts, next_attempt_at`,
    [id, error.slice(0, 1_000), s.maxAttempts, s.backoffMs, s.backoffMaxMs, OPEN],
  );
  return rows[0];
}

/** A shard database as the outbox statements need it. */
type ShardDb = Readonly<{ shard: number; ds: Db }>;

export type ReplaySelector = Readonly<{ ids: readonly (string | number)[] }> | Readonly<{ state: 'fail' | 'dead' }>;
export type ReplayedTask = Readonly<{ shard: number; id: string; messageId: string; topic: string }>;

/** Task ids of `shard` among the ids: `SHARD:ID` of this shard, or a bare number (task ids are per shard). */
function taskIdsOf(ids: readonly string[], shard: number): string[] {
  return ids.flatMap((v) => {
    const qualified = /^(\d+):(\d+)$/.exec(v);
    if (qualified) return Number(qualified[1]) === shard ? [qualified[2]!] : [];
    return /^\d{1,18}$/.test(v) ? [v] : [];
  });
}

/**
 * Puts tasks back to `create` with attempts 0, due now, same message id. Ids: a message id (unique
 * across shards, preferred), `SHARD:ID` (a task id as `tasks list` prints it), or a bare number
 * (a task id, matched in every shard, as task ids are per shard). Tasks already `create` are left
 * alone (a relay may be publishing them); by id any other state is replayed, `completed` included.
 */
export async function replayTasks(shards: readonly ShardDb[], sel: ReplaySelector): Promise<ReplayedTask[]> {
  const out: ReplayedTask[] = [];
  for (const s of shards) {
    let where = 'state = $1';
    let params: unknown[] = ['state' in sel ? sel.state : undefined];
    if ('ids' in sel) {
      const taskIds = taskIdsOf(sel.ids.map(String), s.shard);
      const messageIds = sel.ids.filter((raw): raw is string => typeof raw === 'string' && !/^(\d+):(\d+)$/.test(raw));
      if (!messageIds.length && !taskIds.length) continue;
      where = `state <> 'create' AND (message_id = ANY($1::text[]) OR id = ANY($2::bigint[]))`;
      params = [messageIds, taskIds];
    }
    const { rows } = await sql<{ id: string; message_id: string; topic: string }>(
      s.ds,
      `UPDATE task SET state = 'create', attempts = 0, next_attempt_at = now(), update_time = now()
        WHERE ${where} RETURNING id::text AS id, message_id, topic`,
      params,
    );
    for (const r of rows) out.push({ shard: s.shard, id: r.id, messageId: r.message_id, topic: r.topic });
  }
  return out;
}

/** A task as `tasks list` shows it. */
export type ListedTask = { shard: number; id: string; message_id: string; topic: string; state: string; attempts: number; next_attempt_at: Date; last_error: string | null; create_time: Date };
const LISTED = `SELECT id::text AS id, message_id, topic, state, attempts, next_attempt_at, last_error, create_time FROM task`;

async function listed(s: ShardDb, where: string, params: unknown[]): Promise<ListedTask[]> {
  const { rows } = await sql<Omit<ListedTask, 'shard'>>(s.ds, `${LISTED} ${where}`, params);
  return rows.map((r) => ({ shard: s.shard, ...r }));
}

/** The newest tasks (of one state, or all) across the shards, newest first, at most `limit`. */
export async function listTasks(shards: readonly ShardDb[], state: string | undefined, limit: number): Promise<ListedTask[]> {
  const rows: ListedTask[] = [];
  for (const s of shards) rows.push(...(await listed(s, 'WHERE ($1::text IS NULL OR state = $1) ORDER BY create_time DESC, id DESC LIMIT $2', [state ?? null, limit])));
  rows.sort((a, b) => b.create_time.getTime() - a.create_time.getTime());
  return rows.slice(0, limit);
}

/** Tasks the selector addresses, in any state (read only): for a dry run and to report ids not found. */
export async function findTasks(shards: readonly ShardDb[], sel: ReplaySelector): Promise<ListedTask[]> {
  const out: ListedTask[] = [];
  for (const s of shards) {
    if ('state' in sel) out.push(...(await listed(s, 'WHERE state = $1', [sel.state])));
    else {
      const ids = sel.ids.map(String);
      out.push(...(await listed(s, 'WHERE message_id = ANY($1::text[]) OR id = ANY($2::bigint[])', [ids, taskIdsOf(ids, s.shard)])));
    }
  }
  return out;
}

/** Tasks not yet completed, by state (create, fail, dead; each present, 0 when none); read through the two partial indexes. */
export async function countOpenTasks(ds: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = { create: 0, fail: 0, dead: 0 };
  const { rows } = await sql<{ state: string; n: string }>(
    ds,
    `SELECT state, count(*) AS n FROM task WHERE state IN ('create', 'fail') GROUP BY state
     UNION ALL SELECT 'dead', count(*) FROM task WHERE state = 'dead'`,
  );
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

/** Age in seconds of the oldest task still to be published (create or fail); 0 when none. */
export async function outboxLagSeconds(ds: Db): Promise<number> {
  const { rows } = await sql<{ age: number | null }>(ds, `SELECT EXTRACT(EPOCH FROM now() - min(create_time))::float8 AS age FROM task WHERE state IN ('create', 'fail')`);
  return Math.max(0, Number(rows[0]?.age ?? 0));
}
