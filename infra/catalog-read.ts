import type { Activity, CountPackage } from '../domain/catalog';
import { type Db, sql } from './db';

/** A SKU as the recharge path needs it: its activity and count package resolved. */
export type SkuView = Readonly<{ sku: number; stockCount: number; activity: Activity; counts: CountPackage }>;
export type RebateView = Readonly<{ behavior: string; sku: number; desc: string }>;

export type CatalogReader = Readonly<{
  activity(activityId: number): Promise<Activity | undefined>;
  sku(sku: number): Promise<SkuView | undefined>;
  /** Open rebates of a behavior. */
  rebates(behavior: string): Promise<readonly RebateView[]>;
}>;

/**
 * Catalog reads for the hot path, cached for `ttlMs` (default 1 s): a catalog reload or an activity
 * closing takes effect within that time. Misses are cached too, so unknown ids cost no query storm.
 */
export function catalogReader(global: Db, ttlMs = 1_000): CatalogReader {
  const cache = new Map<string, { at: number; value: Promise<unknown> }>();
  function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value as Promise<T>;
    const value = load();
    cache.set(key, { at: Date.now(), value });
    value.catch(() => cache.delete(key)); // never cache a failure
    return value;
  }
  const toActivity = (r: Record<string, any>): Activity => ({
    activityId: Number(r.activity_id),
    name: r.activity_name,
    desc: r.activity_desc,
    strategyId: Number(r.strategy_id),
    beginTime: new Date(r.begin_date_time),
    endTime: new Date(r.end_date_time),
    state: r.state,
  });
  return {
    activity: (activityId) =>
      cached(`a:${activityId}`, async () => {
        const { rows } = await sql(global, 'SELECT * FROM raffle_activity WHERE activity_id = $1', [activityId]);
        return rows[0] ? toActivity(rows[0]) : undefined;
      }),
    sku: (sku) =>
      cached(`s:${sku}`, async () => {
        const { rows } = await sql<Record<string, any>>(global, `
          SELECT s.sku, s.stock_count, c.activity_count_id, c.total_count, c.day_count, c.month_count, a.*
          FROM raffle_activity_sku s
          JOIN raffle_activity a ON a.activity_id = s.activity_id
          JOIN raffle_activity_count c ON c.activity_count_id = s.activity_count_id
          WHERE s.sku = $1`, [sku]);
        const r = rows[0];
        if (!r) return undefined;
        return {
          sku: Number(r.sku),
          stockCount: Number(r.stock_count),
          activity: toActivity(r),
          counts: { activityCountId: Number(r.activity_count_id), totalCount: r.total_count, dayCount: r.day_count, monthCount: r.month_count },
        };
      }),
    rebates: (behavior) =>
      cached(`r:${behavior}`, async () => {
        const { rows } = await sql<Record<string, any>>(global,
          `SELECT behavior_type, rebate_config, rebate_desc FROM daily_behavior_rebate WHERE behavior_type = $1 AND state = 'open' AND rebate_type = 'sku' ORDER BY id`, [behavior]);
        return rows.map((r) => ({ behavior: r.behavior_type, sku: Number(r.rebate_config), desc: r.rebate_desc }));
      }),
  };
}
