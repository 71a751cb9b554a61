import { ROOT_CONTEXT, context, trace, type Context, type Span } from '@opentelemetry/api';
import { endSpan, transactionSpan, untracedTransaction, type Db, type Tx } from './db';
import { classify, TransientError } from './errors';
import type { Logger } from './log';
import { groupSize } from './metrics';

/**
 * One message's work in a shard transaction. It may run twice: first in a group with other
 * messages' units, and, if that group rolled back because of another unit, again alone.
 */
export type Unit<T> = Readonly<{
  /**
   * Whose rows the unit locks (the user id). A group holds at most one unit per key and runs its
   * units in key order, so two groups (in any process) take their row locks in the same order and
   * never wait on each other in a cycle.
   */
  key: string;
  run(tx: Tx): Promise<T>;
  /** After a rollback of a transaction in which `run` started: undo what it did outside the database. */
  undo?(): Promise<void>;
  /**
   * The unit as a member of a set-based batch: grouped only with units of the same batch, whose
   * `run` then does the work of all of them in a few set-based statements instead of each unit's
   * own. A unit alone, and every unit after its group rolled back, runs its own `run`.
   */
  batch?: Batched<T>;
  /**
   * In a transaction of its own, never grouped: for a unit that locks rows another kind of group
   * locks in another order (a cancel's order row, which a use batch locks split table by split
   * table), so that it holds one key's rows at most while it waits.
   */
  alone?: boolean;
}>;

/**
 * Units of one kind done together: `run` gets their inputs in the group's key order and answers one
 * result per input, in that order, each as the unit's own `run` would have. A statement of it that
 * locks rows of several keys should lock them in key order too (`ORDER BY key COLLATE "C"`, the
 * order `byKey` gives), so that a batch and a group of single units never wait on each other in a
 * cycle (docs/DESIGN.md names the one batch that does not, and why). It must leave nothing outside
 * the database to undo: a batch that throws rolls the group back and each unit runs alone.
 */
export type Batch<I, T> = Readonly<{ run(tx: Tx, members: readonly Member<I>[]): Promise<readonly T[]> }>;

/** One unit in its batch: its input, and its context (its message's transaction span) to run its own calls in, e.g. one that records the trace. */
export type Member<I> = Readonly<{ input: I; within<R>(fn: () => R): R }>;

export type Batched<T> = Readonly<{ of: Batch<unknown, T>; input: unknown }>;

/** `unit.batch` for a unit whose work `of` can do with others': `input` is what `of.run` gets for it. */
export const batched = <I, T>(of: Batch<I, T>, input: I): Batched<T> => ({ of: of as Batch<unknown, T>, input });

/** Key order by code point (UTF-8 bytes): PostgreSQL's `COLLATE "C"` on a UTF-8 database, which a batch's locks follow. */
export const byKey = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export type GroupSettings = Readonly<{
  /** Units in one transaction at most; 1 turns grouping off (one transaction per message). */
  max: number;
  /** Group transactions in flight at once on this database. */
  lanes: number;
  /**
   * When every lane has been in its transaction this long (the database, or the path to it, has gone
   * silent), waiting units fail at once as an outage of this database instead of waiting for the
   * client timeouts: their messages are held or parked and leave the consumer's prefetch window to
   * the other shards. 0 = never.
   */
  stallMs?: number;
}>;

export type GroupCommitter = Readonly<{ run<T>(unit: Unit<T>): Promise<T> }>;

/** `ctx`: the context of the message that handed the unit in (its span, its log fields). */
type Pending = { unit: Unit<unknown>; ctx: Context; resolve(value: unknown): void; reject(err: unknown): void };

/** A failure of the commit itself: whether the group's work is in the database is unknown. */
class CommitOutcomeUnknown extends Error {
  constructor(readonly failure: unknown) {
    super('commit failed: outcome unknown');
  }
}

/**
 * Group commit: the units of several messages for one database share a transaction (one BEGIN, one
 * COMMIT, one WAL flush). A unit waits only while every lane is busy, so a lone message goes out at
 * once and groups form under load by themselves.
 *
 * Per-message outcomes are kept. If a unit fails, the group rolls back, every started unit is undone,
 * and each unit runs again in a transaction of its own, which decides its own result. A transient
 * failure of this database (connection lost, circuit open, deadlock) is passed to every unit of the
 * group instead: the consumer policy holds or parks each message. Another dependency's (Redis) is
 * a unit failure like any other. If the commit itself fails, every unit gets that error and nothing is
 * undone (its outcome is unknown; redelivery and the stock reaper settle it).
 */
export function groupCommitter(ds: Db, s: GroupSettings, log: Logger): GroupCommitter {
  const queue: Pending[] = [];
  const lanes = new Set<{ at: number }>();
  const stall = stallGuard(ds, s, lanes, queue, log);

  function pump(): void {
    while (lanes.size < s.lanes && queue.length) {
      const group = takeGroup(queue, s.max);
      const lane = { at: Date.now() };
      lanes.add(lane);
      groupSize.observe(group.length);
      // The group belongs to no one message: its own lines carry none's fields; each unit runs in its own context.
      void context
        .with(ROOT_CONTEXT, () => commit(group))
        .finally(() => {
          lanes.delete(lane);
          pump();
        });
    }
    stall.watch();
  }

  async function commit(group: Pending[]): Promise<void> {
    if (group.length === 1) return alone(ds, group[0]!, log);
    let results: unknown[];
    try {
      results = await inTransaction(ds, group, log);
    } catch (err) {
      // This database's own trouble (its scope, or a bare SQLSTATE) concerns every unit; another
      // dependency's (Redis) only the unit that met it.
      const f = classify(err);
      if (err instanceof CommitOutcomeUnknown || (f.kind === 'transient' && (f.scope === ds.scope || f.scope === 'dependency'))) {
        for (const p of group) p.reject(err instanceof CommitOutcomeUnknown ? err.failure : err);
        return;
      }
      log.warn({ err, units: group.length }, 'a grouped unit failed: group rolled back, each unit runs alone');
      for (const p of group) await alone(ds, p, log);
      return;
    }
    for (const [i, p] of group.entries()) p.resolve(results[i]);
  }

  return {
    run<T>(unit: Unit<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const stalled = stall.error();
        if (stalled) return reject(stalled);
        queue.push({ unit, ctx: context.active(), resolve: resolve as (v: unknown) => void, reject });
        pump();
      });
    },
  };
}

/** One unit in a transaction of its own, which decides its own result. */
async function alone(ds: Db, p: Pending, log: Logger): Promise<void> {
  try {
    p.resolve((await inTransaction(ds, [p], log))[0]);
  } catch (err) {
    p.reject(err instanceof CommitOutcomeUnknown ? err.failure : err);
  }
}

/**
 * The stall bound (`GroupSettings.stallMs`): while every lane has been in its transaction that long,
 * `error()` is the outage a new unit fails with, and the units already waiting fail with it too.
 * A lane is freed just after its units are answered: a unit handed in within that turn may still
 * fail as stalled, and is retried like any outage.
 */
function stallGuard(ds: Db, s: GroupSettings, lanes: ReadonlySet<{ at: number }>, queue: Pending[], log: Logger): { watch(): void; error(): TransientError | undefined } {
  let timer: NodeJS.Timeout | undefined;
  /** Ms every lane has been stuck (since the newest of them started), or 0 while one is free. */
  const stalledFor = () => (s.stallMs && lanes.size >= s.lanes ? Date.now() - Math.max(...[...lanes].map((l) => l.at)) : 0);
  const error = () => {
    const ms = stalledFor();
    return s.stallMs && ms >= s.stallMs ? new TransientError(ds.scope, 'outage', `${ds.scope}: no transaction ended for ${ms} ms on any of ${s.lanes} connections`) : undefined;
  };
  const watch = (): void => {
    clearTimeout(timer);
    if (!s.stallMs || !queue.length || lanes.size < s.lanes) return;
    timer = setTimeout(
      () => {
        const err = error();
        if (!err) return watch();
        log.warn({ waiting: queue.length }, 'database not answering: waiting units fail as an outage');
        for (const p of queue.splice(0)) p.reject(err);
      },
      Math.max(0, s.stallMs - stalledFor()),
    );
    timer.unref();
  };
  return { watch, error };
}

/**
 * Takes up to `max` pending units off the queue in arrival order, one per key and all of the first
 * one's batch (or all of none), then sorted by key; a unit `alone` is a group by itself.
 */
function takeGroup(queue: Pending[], max: number): Pending[] {
  if (queue[0]?.unit.alone) return queue.splice(0, 1);
  const keys = new Set<string>();
  const group: Pending[] = [];
  const batch = queue[0]?.unit.batch?.of;
  for (let i = 0; i < queue.length && group.length < max; ) {
    const p = queue[i]!;
    if (keys.has(p.unit.key) || p.unit.batch?.of !== batch || p.unit.alone) {
      i++;
      continue;
    }
    keys.add(p.unit.key);
    group.push(p);
    queue.splice(i, 1);
  }
  return group.sort((a, b) => byKey(a.unit.key, b.unit.key));
}

/** The units' work in `tx`: one batch run for a group of a batch's units, else each unit's own `run` in turn. */
async function runUnits(tx: Tx, units: readonly Pending[], spans: readonly Span[], started: Pending[]): Promise<unknown[]> {
  const within =
    (i: number) =>
    <R>(fn: () => R) =>
      context.with(trace.setSpan(units[i]!.ctx, spans[i]!), fn);
  const of = units[0]?.unit.batch?.of;
  if (units.length > 1 && of) {
    started.push(...units);
    // Its statements serve every unit: they run in none's span (each unit's transaction span records the group).
    const out = await of.run(
      tx,
      units.map((p, i) => ({ input: p.unit.batch!.input, within: within(i) })),
    );
    if (out.length !== units.length) throw new Error(`a batch answered ${out.length} results for ${units.length} units`);
    return [...out];
  }
  const results: unknown[] = [];
  for (const [i, p] of units.entries()) {
    started.push(p);
    results.push(await within(i)(() => p.unit.run(tx)));
  }
  return results;
}

/** Runs the units in one transaction; after a rollback undoes those that started, then rethrows. */
async function inTransaction(ds: Db, units: Pending[], log: Logger): Promise<unknown[]> {
  const started: Pending[] = [];
  // Each unit has a span of the transaction in its own message's trace, and runs in that span.
  const spans = units.map((p) => transactionSpan(ds, p.ctx, units.length));
  let bodyDone = false;
  try {
    const out = await untracedTransaction(ds, async (tx) => {
      const results = await runUnits(tx, units, spans, started);
      bodyDone = true;
      return results;
    });
    for (const s of spans) endSpan(s);
    return out;
  } catch (err) {
    for (const s of spans) endSpan(s, err);
    if (bodyDone) throw new CommitOutcomeUnknown(err);
    for (const p of started) await context.with(p.ctx, async () => p.unit.undo?.()).catch((e: unknown) => log.warn({ err: e }, 'undo after rollback failed'));
    throw err;
  }
}
