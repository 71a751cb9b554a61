import { SpanKind, context, trace } from '@opentelemetry/api';
import { UnroutableError, type Broker } from './amqp';
import type { OutboxSettings } from './config';
import { crashPoint } from './crash';
import { type Db, endSpan } from './db';
import type { Logger } from './log';
import { outboxFailures, outboxPublished } from './metrics';
import { claimDue, claimUnheld, failTask, markCompleted, releaseTask, type ClaimedTask, type EnqueuedTask, type Envelope } from './outbox';
import { EVENTS_EXCHANGE } from './topology';
import { mutated } from './mutation';
import { extractTraceContext, injectTraceHeaders, tracer } from './trace-context';

/**
 * The outbox relay of one worker context: publishes tasks right after their commit (fast path) and
 * in cron rounds (the task-compensation worker), with publisher confirms; every state change of a
 * task is a statement of infra/outbox.ts.
 */
export type Relay = Readonly<{
  /** How long `enqueue(…, relay.holdMs)` keeps the cron relay off a task its writer publishes. */
  holdMs: number;
  /**
   * Fast path: after the transaction that wrote `tasks` commits, publish them at once. Never throws:
   * whatever is not published here is picked up by the cron relay of the task-compensation worker.
   * Held tasks are already reserved for us: published without a claim.
   */
  publishNow(ds: Db, tasks: readonly EnqueuedTask[]): Promise<void>;
  /** One relay round over every shard: claim, publish, mark; repeats per shard while batches come back full. */
  relayAll(shards: readonly Readonly<{ shard: number; ds: Db }>[], budgetMs?: number): Promise<number>;
  /** Lets fast-path publishes and marks still under way finish (shutdown: before the broker connection closes). */
  drain(): Promise<void>;
}>;

/**
 * Completion marks wait up to this long for others on the same database: at a few hundred messages
 * a second per shard, a 5 ms window held one or two ids, so nearly every message paid an UPDATE
 * statement, its transaction and its WAL flush of its own. The mark only keeps the cron relay from
 * republishing once the hold (OUTBOX_LEASE_MS, ≥ 5 s) expires, so waiting 100 ms costs nothing.
 */
const MARK_BATCH_MS = 100;
/** A batch this large goes out at once. */
const MARK_BATCH_MAX = 500;

export function createRelay(broker: Broker, settings: OutboxSettings, log: Logger): Relay {
  const inFlight = new Set<Promise<void>>();
  const marks = markBatcher();
  const deliver = (ds: Db, tasks: readonly ClaimedTask[], path: 'fast' | 'cron') => deliverTasks({ broker, settings, log, mark: marks.mark }, ds, tasks, path);

  async function publishHeldOrClaimed(ds: Db, tasks: readonly EnqueuedTask[]): Promise<void> {
    try {
      const held: ClaimedTask[] = [];
      const rest: string[] = [];
      for (const t of tasks) {
        if (t.held && t.envelope) held.push({ id: t.id, topic: t.topic, message_id: t.messageId, message: t.envelope, attempts: 0 });
        else rest.push(t.id);
      }
      const claimed = rest.length ? await claimUnheld(ds, rest, settings.leaseMs) : [];
      await deliver(ds, [...held, ...claimed], 'fast');
    } catch (err) {
      log.warn({ err, tasks: tasks.map((t) => t.messageId) }, 'fast-path publish failed, the relay will retry');
    }
  }

  async function relayShard(s: Readonly<{ shard: number; ds: Db }>, budgetMs: number): Promise<number> {
    let sent = 0;
    const deadline = Date.now() + budgetMs;
    try {
      while (broker.connected() && Date.now() < deadline) {
        const batch = await claimDue(s.ds, settings);
        sent += await deliver(s.ds, batch, 'cron');
        if (batch.length < settings.batchSize) break;
      }
    } catch (err) {
      log.warn({ err, shard: s.shard }, 'relay round failed on a shard, retrying next tick');
    }
    return sent;
  }

  return {
    holdMs: settings.leaseMs,
    publishNow(ds, tasks) {
      if (!tasks.length || !broker.connected()) return Promise.resolve();
      const p = publishHeldOrClaimed(ds, tasks).finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p;
    },
    async relayAll(shards, budgetMs = 5_000) {
      const counts = await Promise.all(shards.map((s) => relayShard(s, budgetMs)));
      return counts.reduce((a, b) => a + b, 0);
    },
    async drain() {
      await Promise.allSettled([...inFlight]);
      await marks.drain();
    },
  };
}

/**
 * Marks published tasks `completed`, several deliveries per UPDATE: ids arriving within
 * MARK_BATCH_MS on one database share a statement (and its transaction). A crash before it runs
 * only means a republish; `drain` sends what waits at once.
 */
function markBatcher(): Readonly<{ mark(ds: Db, ids: readonly string[]): Promise<void>; drain(): Promise<void> }> {
  type Batch = { ids: string[]; done: Promise<void>; flush(): void };
  const pending = new Map<Db, Batch>();
  const running = new Set<Promise<void>>();
  return {
    mark(ds, ids) {
      let batch = pending.get(ds);
      if (!batch) {
        let go: () => void = () => undefined;
        const timer = new Promise<void>((resolve) => {
          go = resolve;
          setTimeout(resolve, MARK_BATCH_MS);
        });
        const b: Batch = { ids: [], done: Promise.resolve(), flush: () => go() };
        b.done = timer.then(async () => {
          if (pending.get(ds) === b) pending.delete(ds);
          await markCompleted(ds, b.ids);
        });
        pending.set(ds, (batch = b));
        const settled = b.done.catch(() => undefined).finally(() => running.delete(settled));
        running.add(settled);
      }
      batch.ids.push(...ids);
      if (batch.ids.length >= MARK_BATCH_MAX) {
        pending.delete(ds);
        batch.flush();
      }
      return batch.done;
    },
    async drain() {
      for (const b of pending.values()) b.flush();
      await Promise.allSettled([...running]);
    },
  };
}

type DeliverDeps = Readonly<{ broker: Broker; settings: OutboxSettings; log: Logger; mark(ds: Db, ids: readonly string[]): Promise<void> }>;

/** Publishes claimed tasks (confirms in parallel, publishes in order) and records each outcome. */
async function deliverTasks(d: DeliverDeps, ds: Db, tasks: readonly ClaimedTask[], path: 'fast' | 'cron'): Promise<number> {
  if (mutated('completed-on-claim'))
    await d.mark(
      ds,
      tasks.map((t) => t.id),
    );
  const results = await Promise.allSettled(tasks.map((t) => publishTask(d.broker, t)));
  const done: string[] = [];
  for (const [i, r] of results.entries()) {
    if (r.status === 'fulfilled') done.push(tasks[i]!.id);
    else await recordFailure(d, ds, tasks[i]!, r.reason as Error & { code?: string });
  }
  if (done.length) {
    // Confirmed means delivered: a crash before the mark publishes again, and consumers deduplicate.
    // The fast path does not wait for its (batched) mark: the handler behind it may hold a delivery.
    const marked = d.mark(ds, done);
    if (path === 'cron') await marked;
    else marked.catch((err) => d.log.warn({ err, tasks: done.length }, 'marking published tasks completed failed; the relay publishes them again after their hold'));
    outboxPublished.inc({ path }, done.length);
  }
  return done.length;
}

async function recordFailure(d: DeliverDeps, ds: Db, t: ClaimedTask, err: Error & { code?: string }): Promise<void> {
  if (!d.broker.connected()) {
    // An outage is nobody's fault: no attempt counted, due again as soon as the broker is back.
    outboxFailures.inc({ kind: 'disconnected' });
    await releaseTask(ds, t.id, `broker unavailable: ${err.message}`);
    return;
  }
  const kind = err instanceof UnroutableError ? 'unroutable' : err.code === 'ETIMEDOUT' ? 'timeout' : 'nack';
  outboxFailures.inc({ kind });
  const row = await failTask(ds, t.id, `${kind}: ${err.message}`, d.settings);
  const fields = { taskId: t.id, messageId: t.message_id, topic: t.topic, kind, attempts: row?.attempts, nextAttemptAt: row?.next_attempt_at };
  if (row?.state === 'dead') d.log.error(fields, 'outbox task is dead after its last attempt; replay it once the cause is fixed');
  else d.log.warn(fields, 'outbox publish failed, backing off');
}

/**
 * One event, in a producer span continuing the trace recorded in its envelope (the cause's); the
 * body is the envelope without the trace fields, which go into the AMQP headers as `traceparent`.
 */
async function publishTask(broker: Broker, t: ClaimedTask): Promise<void> {
  const { traceparent, tracestate, ...body } = t.message;
  const parent = extractTraceContext({ traceparent, tracestate }, context.active());
  const span = tracer().startSpan(
    `send ${t.topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': EVENTS_EXCHANGE,
        'messaging.rabbitmq.destination.routing_key': t.topic,
        'messaging.message.id': t.message_id,
      },
    },
    parent,
  );
  try {
    await publishBody(broker, t, body, injectTraceHeaders({}, trace.setSpan(parent, span)));
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
  endSpan(span);
  crashPoint('relay-after-confirm');
}

async function publishBody(broker: Broker, t: ClaimedTask, body: Omit<Envelope, 'traceparent' | 'tracestate'>, headers: Record<string, unknown>): Promise<void> {
  await broker.publish(EVENTS_EXCHANGE, t.topic, Buffer.from(JSON.stringify(body)), {
    headers,
    persistent: true,
    mandatory: true,
    messageId: t.message_id,
    type: t.topic,
    // AMQP timestamps are whole seconds; the envelope keeps the milliseconds.
    timestamp: Math.floor(t.message.timestamp / 1000),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
  });
}
