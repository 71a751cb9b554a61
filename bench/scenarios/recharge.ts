import type { Driver } from '../driver';
import type { Pools } from '../world';
import { RECHARGE_SKUS, SKUS } from '../world';
import { bounded, log, now, progress, round, sleep, summarize, type Latency } from '../support';

export const EVENTS_EXCHANGE = 'activity.events';
export const RECHARGE_QUEUE = 'activity.recharge';

/**
 * Every event on `activity.events` seen by the bench, from an exclusive queue bound before the
 * first publish. Outbox delay = arrival time − envelope `timestamp` (the handler's clock reading
 * just before its transaction; both clocks are this machine's), kept per phase and routing key.
 */
export type EventTap = Readonly<{
  phase(name: string): void;
  delays(phase: string, key?: string): number[];
  /** Distinct recharge outcomes (completed + rejected) whose outBusinessNo starts with `prefix`. */
  outcomes(prefix: string): { completed: number; rejected: number; last: number };
}>;

export async function tapEvents(d: Driver): Promise<EventTap> {
  let phase = 'idle';
  const delays = new Map<string, number[]>();
  const seen = new Map<string, { completed: Set<string>; rejected: Set<string>; last: number }>();
  await d.listen(EVENTS_EXCHANGE, ['recharge.completed', 'recharge.rejected', 'partake.created'], (m, at) => {
    let body: any;
    try {
      body = JSON.parse(m.content.toString('utf8'));
    } catch {
      return;
    }
    const key = m.fields.routingKey;
    if (typeof body?.timestamp === 'number') {
      const k = `${phase}:${key}`;
      if (!delays.has(k)) delays.set(k, []);
      delays.get(k)!.push(Date.now() - body.timestamp);
    }
    const obn = body?.data?.outBusinessNo;
    if (typeof obn === 'string' && key.startsWith('recharge.')) {
      const prefix = obn.slice(0, obn.lastIndexOf('-') + 1);
      let s = seen.get(prefix);
      if (!s) seen.set(prefix, (s = { completed: new Set(), rejected: new Set(), last: 0 }));
      (key === 'recharge.completed' ? s.completed : s.rejected).add(`${body.data.userId}\u0000${obn}`);
      s.last = at;
    }
  });
  return {
    phase: (name) => void (phase = name),
    delays: (p, key) => [...delays].filter(([k]) => k.startsWith(`${p}:`) && (!key || k === `${p}:${key}`)).flatMap(([, v]) => v),
    outcomes(prefix) {
      const s = seen.get(prefix);
      return { completed: s?.completed.size ?? 0, rejected: s?.rejected.size ?? 0, last: s?.last ?? 0 };
    },
  };
}

export type RechargeResult = Readonly<{
  n: number;
  users: number;
  published: number;
  publishSeconds: number;
  /** Outcome events (completed + rejected) that arrived, and when the last did. */
  completed: number;
  rejected: number;
  seconds: number;
  perSecond: number;
  /** Committed outcomes in the shards (outbox rows), polled: independent of the relay. */
  committed: number;
  committedSeconds: number;
  committedPerSecond: number;
  /** Wall time of the bench's own polls of the outbox rows: an upper bound of the database CPU they took. */
  pollSeconds: number;
  timedOut: boolean;
  outboxDelay: Latency;
}>;

/**
 * Publishes N recharges with publisher confirms (256 in flight) over `users` users and the four
 * bench SKUs round robin (the scarce one runs out, so some are rejected), then waits until every
 * one has its outcome event, polling the shards' outbox rows alongside.
 */
export async function rechargeScenario(d: Driver, tap: EventTap, pools: Pools, n: number, users: number, timeoutS: number, runId: string, eventsFlow = true): Promise<RechargeResult> {
  const prefix = `bench-${runId}-rc-`;
  tap.phase('recharge');
  const bar = progress('recharge', n);
  const t0 = now();
  let committed = 0;
  let committedAt = 0;
  let polling = true;
  let pollMs = 0;
  const countCommitted = committedCounter(pools, prefix);
  const poller = (async () => {
    while (polling) {
      const p0 = now();
      committed = await countCommitted().catch(() => committed);
      pollMs += now() - p0;
      if (committed >= n && !committedAt) committedAt = now();
      await sleep(250);
    }
  })();
  const ticker = setInterval(() => {
    const o = tap.outcomes(prefix);
    bar.set(o.completed + o.rejected);
    bar.note(`committed ${committed}`);
  }, 200);
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < n) {
        const i = next++;
        const sku = RECHARGE_SKUS[i % RECHARGE_SKUS.length]!;
        await d.publish('', RECHARGE_QUEUE, {
          userId: `bench-r${i % users}`,
          sku,
          outBusinessNo: `${prefix}${i}`,
          payType: sku === SKUS.unlimitedB ? 'cash' : 'free',
          ...(sku === SKUS.unlimitedB ? { payAmount: '1.50' } : {}),
        });
      }
    }),
  );
  const publishSeconds = (now() - t0) / 1000;
  // Without a relay publishing, the committed outbox rows are the only outcome to wait for.
  const done = async () => {
    for (;;) {
      const o = tap.outcomes(prefix);
      if (eventsFlow ? o.completed + o.rejected >= n : committedAt > 0) return false;
      await sleep(100);
    }
  };
  const timedOut = await bounded(timeoutS * 1000, done(), () => true);
  // Committed count a moment longer, for when events do not flow (no relay yet).
  if (timedOut && !committedAt)
    await bounded(
      5_000,
      (async () => {
        while (!committedAt) await sleep(100);
      })(),
      () => undefined,
    );
  polling = false;
  await poller;
  clearInterval(ticker);
  const o = tap.outcomes(prefix);
  bar.set(o.completed + o.rejected);
  bar.note(`completed ${o.completed} rejected ${o.rejected} committed ${committed}${timedOut ? ' TIMED OUT' : ''}`);
  bar.done();
  if (timedOut) log(`recharge: ${eventsFlow ? `${o.completed + o.rejected}/${n} outcome events` : `${committed}/${n} committed`} within ${timeoutS} s`);
  const seconds = ((o.last || now()) - t0) / 1000;
  const committedSeconds = ((committedAt || now()) - t0) / 1000;
  return {
    n,
    users,
    published: n,
    publishSeconds: round(publishSeconds),
    completed: o.completed,
    rejected: o.rejected,
    seconds: round(seconds),
    perSecond: eventsFlow ? round((o.completed + o.rejected) / seconds) : NaN,
    committed,
    committedSeconds: round(committedSeconds),
    committedPerSecond: round(committed / committedSeconds),
    pollSeconds: round(pollMs / 1000),
    timedOut,
    outboxDelay: summarize(tap.delays('recharge')),
  };
}

/**
 * Outbox rows of recharge outcomes for this run, over every shard: each call reads only the rows
 * past the highest id it has seen, less `TASK_ID_MARGIN` for the transactions still open then (an
 * id is taken at insert, its row is visible at commit), and counts each id once. Reading every
 * task's envelope on every poll cost PostgreSQL more the longer the run, all of it counted in the
 * pipeline's PostgreSQL CPU (docs/BENCHMARKS.md, hot path row 26).
 */
export function committedCounter(pools: Pools, prefix: string): () => Promise<number> {
  const shards = pools.shards.map((pool) => ({ pool, top: 0n, ids: new Set<string>() }));
  return async () => {
    for (const s of shards) {
      const from = s.top > TASK_ID_MARGIN ? s.top - TASK_ID_MARGIN : 0n;
      const { rows } = await s.pool.query(
        `SELECT max(id)::text AS top, array_agg(id::text) FILTER (WHERE topic IN ('recharge.completed', 'recharge.rejected') AND message->'data'->>'outBusinessNo' LIKE $2) AS ids
         FROM task WHERE id > $1 AND id <= $3`,
        // Both bounds: PostgreSQL then guesses a narrow range and reads the primary key, statistics or
        // not (with one bound it guesses a third of the table and scans all of it).
        [from.toString(), `${prefix}%`, (from + 1_000_000_000n).toString()],
      );
      if (rows[0].top !== null && BigInt(rows[0].top) > s.top) s.top = BigInt(rows[0].top);
      for (const id of rows[0].ids ?? []) s.ids.add(id);
    }
    return shards.reduce((n, s) => n + s.ids.size, 0);
  };
}

/** Task ids re-read below the highest seen: far more than the rows of the transactions a shard has open at once. */
const TASK_ID_MARGIN = 2000n;

export type OutboxResult = Readonly<{ rate: number; sent: number; arrived: number; delay: Latency; byKey: Record<string, Latency> }>;

/** Light load: recharges of an unlimited SKU at `rate`/s for `seconds`; delay commit → arrival. */
export async function outboxScenario(d: Driver, tap: EventTap, rate: number, seconds: number, runId: string): Promise<OutboxResult> {
  const prefix = `bench-${runId}-ob-`;
  tap.phase('outbox');
  const total = Math.max(1, Math.round(rate * seconds));
  const bar = progress(`outbox ${rate}/s`, total);
  const t0 = now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > now()) await sleep(due - now());
    await d.publish('', RECHARGE_QUEUE, { userId: `bench-o${i % 200}`, sku: SKUS.unlimitedA, outBusinessNo: `${prefix}${i}` });
    bar.tick();
  }
  await bounded(
    15_000,
    (async () => {
      while (tap.outcomes(prefix).completed < total) await sleep(50);
    })(),
    () => undefined,
  );
  bar.note(`arrived ${tap.outcomes(prefix).completed}`);
  bar.done();
  return {
    rate,
    sent: total,
    arrived: tap.outcomes(prefix).completed,
    delay: summarize(tap.delays('outbox')),
    byKey: {},
  };
}
