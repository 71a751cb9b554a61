import { expiryCutoff } from '../../domain/raffle-order';
import type { Expiring } from '../../infra/catalog-read';
import { begin, sql } from '../../infra/db';
import type { Shard } from '../../infra/shards';
import { lockKey } from '../../infra/stock';
import type { Deps } from './handle';
import { expiredOrders } from './order-store';
import { cancelRaffleOrder } from './raffle-order';

/** How often the job looks; an order is cancelled within this (plus a batch's time) after reaching its TTL. */
export const EXPIRY_EVERY_MS = 2_000;
/** Orders cancelled per activity, split table and batch; a full batch is followed by the next at once. */
export const EXPIRY_BATCH = 200;
/** Time one round spends on one split table at most; what is left is the next round's. */
export const EXPIRY_TABLE_BUDGET_MS = 10_000;

/**
 * Cancels and refunds unused raffle orders older than their activity's `raffleOrderTtlSeconds`
 * (contract §6 Expiry). Each order goes through the same unit as `activity.raffle-order.cancel`,
 * so a racing use or a second instance of this job can never refund twice (the cancel is guarded).
 * Instances share the work: per shard and split table, one holds its lock at a time.
 */
export function startExpiry(d: Deps, everyMs = EXPIRY_EVERY_MS): () => Promise<void> {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = expireAll(d)
      .catch((err) => d.log.warn({ err }, 'raffle order expiry failed, next round retries'))
      .finally(() => (running = undefined));
  }, everyMs);
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** One round over every shard and split table; the number of orders cancelled. */
export async function expireAll(d: Deps): Promise<number> {
  const expiring = await d.catalog.expiring();
  if (!expiring.length) return 0;
  let cancelled = 0;
  for (const shard of d.dbs.shards) {
    for (const suffix of d.dbs.suffixes) cancelled += await expireTable(d, shard, suffix, expiring);
  }
  if (cancelled) d.log.info({ cancelled }, 'expired raffle orders cancelled and refunded');
  return cancelled;
}

/**
 * One split table, under a transaction-level try-lock held (idle) on a connection of its own while the
 * cancels run in their own units: the server drops it with the transaction, also if we die. A round
 * stops after `EXPIRY_TABLE_BUDGET_MS`, well within the 30 s the server lets a transaction sit idle.
 */
async function expireTable(d: Deps, shard: Shard, suffix: string, expiring: readonly Expiring[]): Promise<number> {
  const lock = await begin(shard.ds);
  try {
    const { rows } = await sql<{ ok: boolean }>(lock, 'SELECT pg_try_advisory_xact_lock($1::bigint) AS ok', [lockKey(`raffle-order-expiry:${suffix}`)]);
    if (!rows[0]?.ok) return 0;
    const deadline = Date.now() + EXPIRY_TABLE_BUDGET_MS;
    let cancelled = 0;
    for (const a of expiring) cancelled += await expireActivity(d, shard, suffix, a, deadline);
    return cancelled;
  } finally {
    await lock.rollback();
  }
}

async function expireActivity(d: Deps, shard: Shard, suffix: string, a: Expiring, deadline: number): Promise<number> {
  let cancelled = 0;
  while (Date.now() < deadline) {
    const due = await expiredOrders(shard.ds, suffix, a.activityId, expiryCutoff(a.ttlSeconds, d.clock()), EXPIRY_BATCH);
    const results = await Promise.allSettled(due.map((o) => cancelRaffleOrder(d, o, 'expired')));
    const failed = results.filter((r) => r.status === 'rejected');
    cancelled += results.filter((r) => r.status === 'fulfilled' && r.value.kind === 'cancel').length;
    if (failed.length) {
      // They stay `create` and are found again next round; the rest of this batch is done.
      d.log.warn({ err: (failed[0] as PromiseRejectedResult).reason, failed: failed.length, activityId: a.activityId, shard: shard.shard, suffix }, 'some expired raffle orders not cancelled yet');
      return cancelled;
    }
    if (due.length < EXPIRY_BATCH) return cancelled;
  }
  return cancelled;
}
