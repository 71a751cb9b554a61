import { UnroutableError, type Broker } from './amqp';
import { crashPoint } from './crash';
import { intSetting } from './config';
import { type Db, sql } from './db';
import type { Logger } from './log';
import { outboxFailures, outboxPublished } from './metrics';
import type { EnqueuedTask, Envelope } from './outbox';
import type { Shard } from './shards';
import { EVENTS_EXCHANGE } from './topology';

/**
 * Outbox relay settings, from the environment (all optional):
 * OUTBOX_MAX_ATTEMPTS (10) failed publishes before a task is `dead`;
 * OUTBOX_BACKOFF_MS (1000) / OUTBOX_BACKOFF_MAX_MS (300000) wait after failure n = base * 2^(n-1), capped;
 * OUTBOX_LEASE_MS (30000) how long a claim keeps other relays off a task (a crashed relay's claim expires);
 * OUTBOX_BATCH (100) tasks claimed per round and shard.
 */
export type RelaySettings = Readonly<{ maxAttempts: number; backoffMs: number; backoffMaxMs: number; leaseMs: number; batchSize: number }>;

export function relaySettings(env: NodeJS.ProcessEnv = process.env): RelaySettings {
  return {
    maxAttempts: intSetting(env, 'OUTBOX_MAX_ATTEMPTS', 10, 1, 1000),
    backoffMs: intSetting(env, 'OUTBOX_BACKOFF_MS', 1_000, 10, 3_600_000),
    backoffMaxMs: intSetting(env, 'OUTBOX_BACKOFF_MAX_MS', 300_000, 10, 86_400_000),
    // Longer than a publish can take (10 s confirm timeout) so that a live claim never expires.
    leaseMs: intSetting(env, 'OUTBOX_LEASE_MS', 30_000, 5_000, 3_600_000),
    batchSize: intSetting(env, 'OUTBOX_BATCH', 100, 1, 10_000),
  };
}


let defaults: RelaySettings | undefined;

type Claimed = { id: string; topic: string; message_id: string; message: Envelope; attempts: number };
const CLAIMED_COLUMNS = 't.id::text AS id, t.topic, t.message_id, t.message, t.attempts';

/** How long `enqueue(…, holdForFastPath())` keeps the cron relay off a task its writer publishes. */
export const holdForFastPath = (): number => (defaults ??= relaySettings()).leaseMs;

const fastPathInFlight = new Set<Promise<void>>();

/**
 * Fast path: after the transaction that wrote `tasks` commits, publish them at once. Never throws:
 * whatever is not published here is picked up by the cron relay of the task-compensation worker.
 * Held tasks (see `holdForFastPath`) are already reserved for us: published without a claim.
 */
export function publishNow(broker: Broker, ds: Db, tasks: readonly EnqueuedTask[], log: Logger): Promise<void> {
  if (!tasks.length || !broker.connected()) return Promise.resolve();
  const p = publishTasksNow(broker, ds, tasks, log).finally(() => fastPathInFlight.delete(p));
  fastPathInFlight.add(p);
  return p;
}

/** Lets fast-path publishes still under way finish (shutdown: before the broker connection closes). */
export async function drainFastPath(): Promise<void> {
  await Promise.allSettled([...fastPathInFlight]);
  await Promise.allSettled([...pendingMarks.values()].map((b) => b.done));
}

async function publishTasksNow(broker: Broker, ds: Db, tasks: readonly EnqueuedTask[], log: Logger): Promise<void> {
  try {
    const settings = (defaults ??= relaySettings());
    const held: Claimed[] = [];
    const rest: string[] = [];
    for (const t of tasks) {
      if (t.held && t.envelope) held.push({ id: t.id, topic: t.topic, message_id: t.messageId, message: t.envelope, attempts: 0 });
      else rest.push(t.id);
    }
    let claimed: Claimed[] = [];
    if (rest.length) {
      // Only tasks nobody holds: a claim sets next_attempt_at a lease (>= 5 s) past update_time, while
      // enqueue, replay and a release leave them equal. No clock comparison, so no skew to allow for.
      ({ rows: claimed } = await sql<Claimed>(
        ds,
        `UPDATE task t SET next_attempt_at = now() + $2 * interval '1 millisecond', update_time = now()
          WHERE t.id = ANY($1::bigint[]) AND t.state = 'create' AND t.next_attempt_at <= t.update_time + interval '1 second'
          RETURNING ${CLAIMED_COLUMNS}`,
        [rest, settings.leaseMs],
      ));
    }
    await deliver(broker, ds, [...held, ...claimed], settings, log, 'fast');
  } catch (err) {
    log.warn({ err, tasks: tasks.map((t) => t.messageId) }, 'fast-path publish failed, the relay will retry');
  }
}

type MarkBatch = { ids: string[]; done: Promise<void> };
const pendingMarks = new Map<Db, MarkBatch>();
const MARK_BATCH_MS = 5;

/**
 * Marks published tasks `completed`, several deliveries per UPDATE: ids arriving within a few
 * milliseconds on one database share a statement. A crash before it runs only means a republish.
 */
function markCompleted(ds: Db, ids: readonly string[]): Promise<void> {
  let batch = pendingMarks.get(ds);
  if (!batch) {
    const b: MarkBatch = { ids: [], done: Promise.resolve() };
    b.done = new Promise<void>((resolve) => setTimeout(resolve, MARK_BATCH_MS)).then(async () => {
      pendingMarks.delete(ds);
      await sql(ds, `UPDATE task SET state = 'completed', update_time = now() WHERE id = ANY($1::bigint[]) AND state IN ('create', 'fail')`, [b.ids]);
    });
    pendingMarks.set(ds, (batch = b));
  }
  batch.ids.push(...ids);
  return batch.done;
}

/** One relay round over every shard: claim, publish, mark; repeats per shard while batches come back full. */
export async function relayAll(broker: Broker, shards: readonly Shard[], settings: RelaySettings, log: Logger, budgetMs = 5_000): Promise<number> {
  const counts = await Promise.all(
    shards.map(async (s) => {
      let sent = 0;
      const deadline = Date.now() + budgetMs;
      try {
        while (broker.connected() && Date.now() < deadline) {
          const batch = await claimBatch(s.ds, settings);
          sent += await deliver(broker, s.ds, batch, settings, log, 'cron');
          if (batch.length < settings.batchSize) break;
        }
      } catch (err) {
        log.warn({ err, shard: s.shard }, 'relay round failed on a shard, retrying next tick');
      }
      return sent;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Claims due tasks in one short statement: SKIP LOCKED keeps concurrent relays apart, and the lease
 * (next_attempt_at pushed ahead) keeps them apart after the row locks are gone.
 */
export async function claimBatch(ds: Db, settings: RelaySettings): Promise<Claimed[]> {
  const { rows } = await sql<Claimed>(
    ds,
    `WITH due AS (
       SELECT id FROM task WHERE state IN ('create', 'fail') AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE task t SET next_attempt_at = now() + $2 * interval '1 millisecond', update_time = now()
       FROM due WHERE t.id = due.id
     RETURNING ${CLAIMED_COLUMNS}`,
    [settings.batchSize, settings.leaseMs],
  );
  return rows;
}

/** Publishes claimed tasks (confirms in parallel, publishes in order) and records each outcome. */
async function deliver(broker: Broker, ds: Db, tasks: readonly Claimed[], settings: RelaySettings, log: Logger, path: 'fast' | 'cron'): Promise<number> {
  const results = await Promise.allSettled(tasks.map((t) => publishTask(broker, t)));
  const done: string[] = [];
  for (const [i, r] of results.entries()) {
    const t = tasks[i]!;
    if (r.status === 'fulfilled') {
      done.push(t.id);
      continue;
    }
    const err = r.reason as Error & { code?: string };
    if (!broker.connected()) {
      // An outage is nobody's fault: no attempt counted, due again as soon as the broker is back.
      outboxFailures.inc({ kind: 'disconnected' });
      await sql(ds, `UPDATE task SET next_attempt_at = now(), last_error = $2, update_time = now() WHERE id = $1 AND state IN ('create', 'fail')`, [t.id, `broker unavailable: ${err.message}`]);
      continue;
    }
    const kind = err instanceof UnroutableError ? 'unroutable' : err.code === 'ETIMEDOUT' ? 'timeout' : 'nack';
    outboxFailures.inc({ kind });
    const { rows } = await sql<{ state: string; attempts: number; next_attempt_at: Date }>(
      ds,
      `UPDATE task SET attempts = attempts + 1,
              state = CASE WHEN attempts + 1 >= $3 THEN 'dead' ELSE 'fail' END,
              last_error = $2,
              next_attempt_at = now() + LEAST($5::float8, $4::float8 * power(2, attempts)) * interval '1 millisecond',
              update_time = now()
        WHERE id = $1 AND state IN ('create', 'fail')
        RETURNING state, attempts, next_attempt_at`,
      [t.id, `${kind}: ${err.message}`.slice(0, 1_000), settings.maxAttempts, settings.backoffMs, settings.backoffMaxMs],
    );
    const row = rows[0];
    const fields = { taskId: t.id, messageId: t.message_id, topic: t.topic, kind, attempts: row?.attempts, nextAttemptAt: row?.next_attempt_at };
    if (row?.state === 'dead') log.error(fields, 'outbox task is dead after its last attempt; replay it once the cause is fixed');
    else log.warn(fields, 'outbox publish failed, backing off');
  }
  if (done.length) {
    // Confirmed means delivered: a crash before this line publishes again, and consumers deduplicate.
    await markCompleted(ds, done);
    outboxPublished.inc({ path }, done.length);
  }
  return done.length;
}

async function publishTask(broker: Broker, t: Claimed): Promise<void> {
  await broker.publish(EVENTS_EXCHANGE, t.topic, Buffer.from(JSON.stringify(t.message)), {
    persistent: true,
    mandatory: true,
    messageId: t.message_id,
    type: t.topic,
    // AMQP timestamps are whole seconds; the envelope keeps the milliseconds.
    timestamp: Math.floor(t.message.timestamp / 1000),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
  });
  crashPoint('relay-after-confirm');
}

export type ReplaySelector = Readonly<{ ids: readonly (string | number)[] }> | Readonly<{ state: 'fail' | 'dead' }>;
export type ReplayedTask = Readonly<{ shard: number; id: string; messageId: string; topic: string }>;

/**
 * Puts tasks back to `create` with attempts 0, due now, same message id. Ids: a message id (unique
 * across shards, preferred), `SHARD:ID` (a task id as `tasks list` prints it), or a bare number
 * (a task id, matched in every shard, as task ids are per shard). Tasks already `create` are left
 * alone (a relay may be publishing them); by id any other state is replayed, `completed` included.
 */
export async function replayTasks(shards: readonly Shard[], sel: ReplaySelector): Promise<ReplayedTask[]> {
  const out: ReplayedTask[] = [];
  for (const s of shards) {
    let where: string;
    let params: unknown[];
    if ('state' in sel) {
      where = 'state = $1';
      params = [sel.state];
    } else {
      const messageIds: string[] = [];
      const taskIds: string[] = [];
      for (const raw of sel.ids) {
        const v = String(raw);
        const qualified = /^(\d+):(\d+)$/.exec(v);
        if (qualified) {
          if (Number(qualified[1]) === s.shard) taskIds.push(qualified[2]!);
          continue;
        }
        if (/^\d{1,18}$/.test(v)) taskIds.push(v);
        if (typeof raw === 'string') messageIds.push(v);
      }
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
