import type { Databases } from './shards';
import { sql } from './db';
import type { Redis } from './redis';

/** Live stock of a limited SKU: a Redis counter of units still to sell. Unlimited SKUs have none. */
export const stockKey = (sku: number) => `activity:stock:${sku}`;

/** Adds `delta` (may be negative, floored at 0) to a live counter; a missing counter stays missing. */
const ADJUST = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = tonumber(redis.call('GET', KEYS[1])) + tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v)
return v`;

export async function adjustStock(redis: Redis, sku: number, delta: number): Promise<number | undefined> {
  const v = Number(await redis.eval(ADJUST, 1, stockKey(sku), delta));
  return v < 0 ? undefined : v;
}

/** Committed recharge orders of a SKU over every shard and split table: the ledger. */
export async function countOrders(dbs: Databases, sku: number): Promise<number> {
  let n = 0;
  for (const { ds } of dbs.shards) {
    const union = dbs.suffixes.map((s) => `SELECT count(*) AS n FROM raffle_activity_order_${s} WHERE sku = $1`).join(' UNION ALL ');
    const { rows } = await sql<{ n: string }>(ds, `SELECT coalesce(sum(n), 0)::bigint AS n FROM (${union}) t`, [sku]);
    n += Number(rows[0]?.n ?? 0);
  }
  return n;
}

/** Sets a missing counter from the ledger (stock minus committed orders); an existing one is kept. */
export async function warmStock(dbs: Databases, redis: Redis, sku: number, stockCount: number): Promise<void> {
  if (stockCount < 0) {
    await redis.del(stockKey(sku));
    return;
  }
  const sold = await countOrders(dbs, sku);
  await redis.set(stockKey(sku), Math.max(0, stockCount - sold), 'NX');
}
