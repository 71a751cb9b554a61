import type { Catalog, KnownIds } from '../domain/catalog';
import { sql, transaction, type Tx } from './db';
import type { Databases } from './shards';
import { adjustStock, warmStock } from './stock';
import type { Redis } from './redis';

export async function knownIds(dbs: Databases): Promise<KnownIds> {
  const ids = async (q: string) => new Set((await sql<{ id: string }>(dbs.global, q)).rows.map((r) => Number(r.id)));
  return {
    activityIds: await ids('SELECT activity_id AS id FROM raffle_activity'),
    activityCountIds: await ids('SELECT activity_count_id AS id FROM raffle_activity_count'),
    skus: await ids('SELECT sku AS id FROM raffle_activity_sku'),
  };
}

export type StockChange = Readonly<{ sku: number; before: number | undefined; after: number }>;

const UPSERT_ACTIVITY = `
  INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state, raffle_order_ttl_seconds)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (activity_id) DO UPDATE SET activity_name = $2, activity_desc = $3, begin_date_time = $4,
    end_date_time = $5, strategy_id = $6, state = $7, raffle_order_ttl_seconds = $8, update_time = now()`;

const UPSERT_COUNT = `
  INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count) VALUES ($1, $2, $3, $4)
  ON CONFLICT (activity_count_id) DO UPDATE SET total_count = $2, day_count = $3, month_count = $4, update_time = now()`;

const UPSERT_SKU = `
  INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (sku) DO UPDATE SET activity_id = $2, activity_count_id = $3, stock_count = $4, product_amount = $6,
    stock_count_surplus = CASE
      WHEN $4 < 0 THEN -1
      WHEN raffle_activity_sku.stock_count < 0 THEN $4
      ELSE least($4, greatest(0, raffle_activity_sku.stock_count_surplus + $4 - raffle_activity_sku.stock_count)) END,
    update_time = now()`;

const UPSERT_REBATE = `
  INSERT INTO daily_behavior_rebate (behavior_type, rebate_desc, rebate_type, rebate_config, state) VALUES ($1, $2, 'sku', $3, $4)
  ON CONFLICT (behavior_type, rebate_type, rebate_config) DO UPDATE SET rebate_desc = $2, state = $4, update_time = now()`;

/** Writes the catalog's rows in one transaction; returns each SKU's stock before and after. */
async function upsertCatalog(tx: Tx, c: Catalog): Promise<StockChange[]> {
  for (const a of c.activities) {
    await sql(tx, UPSERT_ACTIVITY, [a.activityId, a.name, a.desc, a.beginTime, a.endTime, a.strategyId, a.state, a.raffleOrderTtlSeconds ?? null]);
  }
  for (const k of c.counts) await sql(tx, UPSERT_COUNT, [k.activityCountId, k.totalCount, k.dayCount, k.monthCount]);
  const out: StockChange[] = [];
  for (const s of c.skus) {
    const { rows } = await sql<{ stock_count: number }>(tx, 'SELECT stock_count FROM raffle_activity_sku WHERE sku = $1 FOR UPDATE', [s.sku]);
    const surplus = s.stockCount < 0 ? -1 : s.stockCount;
    await sql(tx, UPSERT_SKU, [s.sku, s.activityId, s.activityCountId, s.stockCount, surplus, s.productAmount]);
    out.push({ sku: s.sku, before: rows[0]?.stock_count, after: s.stockCount });
  }
  for (const b of c.behaviorRebates) await sql(tx, UPSERT_REBATE, [b.behavior, b.desc, String(b.sku), b.state]);
  return out;
}

/**
 * Upserts the catalog in one transaction, then brings the live stock in step: a new limited SKU is
 * warmed from the ledger, a changed `stockCount` moves the live counter by the difference.
 */
export async function loadCatalog(dbs: Databases, redis: Redis, c: Catalog): Promise<StockChange[]> {
  const changes = await transaction(dbs.global, (tx) => upsertCatalog(tx, c));
  for (const ch of changes) {
    if (ch.after < 0) await warmStock(dbs, redis, ch.sku, -1);
    else if (ch.before === undefined || ch.before < 0) await warmStock(dbs, redis, ch.sku, ch.after);
    else if (ch.after !== ch.before) {
      // A missing counter is rebuilt from the ledger with the new stock; a live one moves by the difference.
      if ((await adjustStock(redis, ch.sku, ch.after - ch.before)) === undefined) await warmStock(dbs, redis, ch.sku, ch.after);
    } else await warmStock(dbs, redis, ch.sku, ch.after);
  }
  return changes;
}
