import { transaction } from '../../infra/db';
import type { Logger } from '../../infra/log';
import type { Redis } from '../../infra/redis';
import type { Databases } from '../../infra/shards';
import { giveBackStock, oldReservations, releaseStock, syncStock } from '../../infra/stock';
import { lockRequest, orderExists } from './store';
import { mutated } from '../../infra/mutation';

/**
 * Age from which a reservation is looked at. Exactness does not depend on it: the reaper takes the
 * request lock, which the taking transaction holds from before its take until it ends, so it only
 * ever settles a finished attempt. The age just spares in-flight requests a wait on that lock.
 */
export const ORPHAN_AGE_SECONDS = 15;

export type ReapResult = { returned: number; released: number };

/**
 * Settles reservations left by crashed workers. Taking the request lock proves the attempt's
 * transaction has ended; then its order either committed (release) or not (give the unit back).
 */
export async function reapReservations(dbs: Databases, redis: Redis, log: Logger, minAgeSeconds = ORPHAN_AGE_SECONDS): Promise<ReapResult> {
  const out: ReapResult = { returned: 0, released: 0 };
  if (mutated('no-reservation-reaper')) return out;
  for (const o of await oldReservations(redis, minAgeSeconds)) {
    const db = dbs.forUser(o.userId);
    await transaction(db.ds, async (tx) => {
      await lockRequest(tx, o.userId, o.outBusinessNo);
      if (await orderExists(tx, db.suffix, o.orderId)) {
        await releaseStock(redis, o);
        out.released++;
      } else if (await giveBackStock(redis, o)) {
        out.returned++;
      }
    });
  }
  if (out.returned || out.released) log.warn({ ...out }, 'orphaned stock reservations settled');
  return out;
}

/** Runs `job` every `everyMs`, never overlapping itself; the returned function stops it and waits for a run in progress. */
function every(everyMs: number, log: Logger, name: string, job: () => Promise<unknown>): () => Promise<void> {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = job()
      .catch((err) => log.warn({ err, job: name }, 'stock job failed, next tick retries'))
      .finally(() => (running = undefined));
  }, everyMs);
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** Surplus sync every second, reaper every `STOCK_REAPER_MS` (5 s) for reservations of `STOCK_REAPER_AGE_SECONDS` (15 s). */
export function startStockJobs(dbs: Databases, redis: Redis, log: Logger, reaper = { everyMs: 5_000, minAgeSeconds: ORPHAN_AGE_SECONDS }): () => Promise<void> {
  const stops = [every(1_000, log, 'stock-sync', () => syncStock(dbs, redis)), every(reaper.everyMs, log, 'stock-reaper', () => reapReservations(dbs, redis, log, reaper.minAgeSeconds))];
  return async () => void (await Promise.all(stops.map((s) => s())));
}
