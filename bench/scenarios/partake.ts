import type { Driver } from '../driver';
import { runCallers } from '../driver';
import { now, progress, round, sleep, summarize, type Latency } from '../support';
import { ACTIVITY_ID } from '../world';

/**
 * Partake over request/reply: C callers, each with its own USERS_PER_CALLER users (preloaded
 * accounts), loop { rpc activity.partake; confirmed publish activity.raffle-order.used of the
 * order }. Only the partake round trip is timed. The caller moves to its next user each time, so
 * the `used` message has long been processed when a user comes round again; a partake that still
 * finds the open order is counted as `existing`.
 */
export const USERS_PER_CALLER = 20;
export const PARTAKE_QUEUE = 'activity.partake';
export const USED_QUEUE = 'activity.raffle-order.used';

export const partakeUser = (caller: number, k: number) => `bench-p${caller}-${k}`;

export type PartakePoint = Readonly<{
  concurrency: number;
  /** Every partake answered, the warm-up second included (for CPU per message). */
  requests: number;
  throughput: number;
  latency: Latency;
  created: number;
  existing: number;
  refused: Record<string, number>;
  errors: number;
}>;

/**
 * `onLevel(c)` is called as each concurrency level starts; the function it returns, if any, gets
 * the level's point as it ends (the bench's CPU spans per level).
 */
export async function partakeScenario(
  d: Driver,
  concurrencies: readonly number[],
  seconds: number,
  onLevel?: (c: number) => ((p: PartakePoint) => void | Promise<void>) | void,
): Promise<PartakePoint[]> {
  const points: PartakePoint[] = [];
  const lastOrder = new Map<string, string>();
  for (const c of concurrencies) {
    const ended = onLevel?.(c);
    const bar = progress(`partake C=${c}`);
    const lat: number[] = [];
    let created = 0;
    let existing = 0;
    let errors = 0;
    const refused: Record<string, number> = {};
    const t0 = now();
    const warm = t0 + Math.min(1_000, seconds * 200);
    const end = t0 + seconds * 1000;
    let counted = 0;
    await runCallers(
      c,
      () => now() >= end || errors > 100,
      async (caller, i) => {
        const userId = partakeUser(caller, i % USERS_PER_CALLER);
        const s = now();
        try {
          const r = await d.rpc(PARTAKE_QUEUE, { userId, activityId: ACTIVITY_ID }, 10_000);
          if (s >= warm) lat.push(r.at - s), counted++;
          bar.tick();
          const body = r.body ?? {};
          if (body.code !== '0000') {
            refused[body.code] = (refused[body.code] ?? 0) + 1;
            return;
          }
          const orderId = String(body.data.orderId);
          if (lastOrder.get(userId) === orderId) existing++;
          else created++;
          lastOrder.set(userId, orderId);
          await d.publish('', USED_QUEUE, { userId, orderId });
        } catch {
          errors++;
        }
      },
    );
    bar.note(`created ${created} existing ${existing} errors ${errors}`);
    bar.done();
    const point: PartakePoint = {
      concurrency: c,
      requests: created + existing + Object.values(refused).reduce((a, b) => a + b, 0),
      throughput: round(counted / ((end - warm) / 1000)),
      latency: summarize(lat),
      created,
      existing,
      refused,
      errors,
    };
    await ended?.(point);
    points.push(point);
  }
  return points;
}

export type PacedPoint = Readonly<{ rate: number; sent: number; throughput: number; latency: Latency; late: number; errors: number }>;

/**
 * Open loop at a fixed rate (the goal's "half of peak load"): a partake is due every 1/rate s, sent
 * by whichever user is free (each user has one request in flight at most, then its `used`), and
 * timed from when it was due, so a backlog shows in the latency instead of hiding it. `late`
 * counts requests that found no free user at their due time.
 */
export async function pacedPartake(d: Driver, users: readonly string[], rate: number, seconds: number): Promise<PacedPoint> {
  const free = [...users];
  const waiting: Array<(u: string) => void> = [];
  const take = () => (free.length ? Promise.resolve(free.shift()!) : new Promise<string>((r) => waiting.push(r)));
  const give = (u: string) => (waiting.length ? waiting.shift()!(u) : free.push(u));
  const bar = progress(`partake paced ${round(rate)}/s`);
  const lat: number[] = [];
  let late = 0;
  let errors = 0;
  const total = Math.max(1, Math.round(rate * seconds));
  const inflight: Promise<void>[] = [];
  const t0 = now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > now()) await sleep(due - now());
    if (!free.length) late++;
    const userId = await take();
    inflight.push(
      (async () => {
        try {
          const r = await d.rpc(PARTAKE_QUEUE, { userId, activityId: ACTIVITY_ID }, 10_000);
          lat.push(r.at - due);
          bar.tick();
          if (r.body?.code === '0000') await d.publish('', USED_QUEUE, { userId, orderId: String(r.body.data.orderId) });
        } catch {
          errors++;
        } finally {
          give(userId);
        }
      })(),
    );
  }
  await Promise.all(inflight);
  const elapsed = (now() - t0) / 1000;
  bar.note(`late ${late} errors ${errors}`);
  bar.done();
  return { rate: round(rate), sent: total, throughput: round(lat.length / elapsed), latency: summarize(lat), late, errors };
}
