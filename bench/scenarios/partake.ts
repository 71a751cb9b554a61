import type { Driver } from '../driver';
import { runCallers } from '../driver';
import { now, progress, round, summarize, type Latency } from '../support';
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

export async function partakeScenario(d: Driver, concurrencies: readonly number[], seconds: number): Promise<PartakePoint[]> {
  const points: PartakePoint[] = [];
  const lastOrder = new Map<string, string>();
  for (const c of concurrencies) {
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
    await runCallers(c, () => now() >= end || errors > 100, async (caller, i) => {
      const userId = partakeUser(caller, i % USERS_PER_CALLER);
      const s = now();
      try {
        const r = await d.rpc(PARTAKE_QUEUE, { userId, activityId: ACTIVITY_ID }, 10_000);
        if (s >= warm) (lat.push(r.at - s), counted++);
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
    });
    bar.note(`created ${created} existing ${existing} errors ${errors}`);
    bar.done();
    points.push({ concurrency: c, requests: created + existing + Object.values(refused).reduce((a, b) => a + b, 0), throughput: round(counted / ((end - warm) / 1000)), latency: summarize(lat), created, existing, refused, errors });
  }
  return points;
}
