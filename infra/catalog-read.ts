import type { Activity, CountPackage } from '../domain/catalog';
import { type Db, sql } from './db';

/** A SKU as the recharge path needs it: its activity and count package resolved. */
export type SkuView = Readonly<{ sku: number; stockCount: number; activity: Activity; counts: CountPackage }>;
export type RebateView = Readonly<{ behavior: string; sku: number; desc: string }>;
/** An activity whose unused raffle orders expire. */
export type Expiring = Readonly<{ activityId: number; ttlSeconds: number }>;

export type CatalogReader = Readonly<{
  activity(activityId: number): Promise<Activity | undefined>;
  sku(sku: number): Promise<SkuView | undefined>;
  /** Open rebates of a behavior. */
  rebates(behavior: string): Promise<readonly RebateView[]>;
  /** Activities with a `raffleOrderTtlSeconds`, whatever their state. */
  expiring(): Promise<readonly Expiring[]>;
}>;

export type CacheOptions = Readonly<{ ttlMs?: number; maxEntries?: number; now?: () => number }>;

export type BoundedCache = Readonly<{ get<T>(key: string, load: () => Promise<T>): Promise<T>; size(): number }>;

/**
 * Memoised loads: an entry lives `ttlMs`, and at most `maxEntries` are kept, the least recently used
 * going first, so that a flood of unknown ids (each one a cached miss) cannot grow memory. A failed
 * load is never kept.
 */
export function boundedCache(o: CacheOptions = {}): BoundedCache {
  const ttlMs = o.ttlMs ?? 1_000;
  const max = o.maxEntries ?? 10_000;
  const now = o.now ?? Date.now;
  const entries = new Map<string, { at: number; value: Promise<unknown> }>();
  return {
    get<T>(key: string, load: () => Promise<T>): Promise<T> {
      const t = now();
      const hit = entries.get(key);
      entries.delete(key); // re-inserted below: the Map's order is the recency order
      if (hit && t - hit.at < ttlMs) {
        entries.set(key, hit);
        return hit.value as Promise<T>;
      }
      const value = load();
      entries.set(key, { at: t, value });
      for (const oldest of entries.keys()) {
        if (entries.size <= max) break;
        entries.delete(oldest);
      }
      value.catch(() => entries.get(key)?.value === value && entries.delete(key));
      return value;
    },
    size: () => entries.size,
  };
}

type ActivityRow = {
  activity_id: string;
  activity_name: string;
  activity_desc: string;
  strategy_id: string;
  begin_date_time: Date;
  end_date_time: Date;
  state: Activity['state'];
  raffle_order_ttl_seconds?: number | null;
};
type SkuRow = ActivityRow & { sku: string; stock_count: number; activity_count_id: string; total_count: number; day_count: number; month_count: number };

const toActivity = (r: ActivityRow): Activity => ({
  activityId: Number(r.activity_id),
  name: r.activity_name,
  desc: r.activity_desc,
  strategyId: Number(r.strategy_id),
  beginTime: new Date(r.begin_date_time),
  endTime: new Date(r.end_date_time),
  state: r.state,
  ...(r.raffle_order_ttl_seconds === null || r.raffle_order_ttl_seconds === undefined ? {} : { raffleOrderTtlSeconds: Number(r.raffle_order_ttl_seconds) }),
});

/**
 * Catalog reads for the hot path, cached (default 1 s, 10,000 entries): a catalog reload or an
 * activity closing takes effect within that time. Misses are cached too, so unknown ids cost no
 * query storm, and the bound keeps a flood of them from growing the worker.
 */
export function catalogReader(global: Db, o: CacheOptions = {}): CatalogReader {
  const cache = boundedCache(o);
  const cached = <T>(key: string, load: () => Promise<T>) => cache.get(key, load);
  return {
    activity: (activityId) =>
      cached(`a:${activityId}`, async () => {
        const { rows } = await sql<ActivityRow>(global, 'SELECT * FROM raffle_activity WHERE activity_id = $1', [activityId]);
        return rows[0] ? toActivity(rows[0]) : undefined;
      }),
    sku: (sku) =>
      cached(`s:${sku}`, async () => {
        const { rows } = await sql<SkuRow>(
          global,
          `
          SELECT s.sku, s.stock_count, c.activity_count_id, c.total_count, c.day_count, c.month_count, a.*
          FROM raffle_activity_sku s
          JOIN raffle_activity a ON a.activity_id = s.activity_id
          JOIN raffle_activity_count c ON c.activity_count_id = s.activity_count_id
          WHERE s.sku = $1`,
          [sku],
        );
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
        const { rows } = await sql<{ behavior_type: string; rebate_config: string; rebate_desc: string }>(
          global,
          `SELECT behavior_type, rebate_config, rebate_desc FROM daily_behavior_rebate WHERE behavior_type = $1 AND state = 'open' AND rebate_type = 'sku' ORDER BY id`,
          [behavior],
        );
        return rows.map((r) => ({ behavior: r.behavior_type, sku: Number(r.rebate_config), desc: r.rebate_desc }));
      }),
    expiring: () =>
      cached('expiring', async () => {
        const { rows } = await sql<{ activity_id: string; ttl: number }>(
          global,
          'SELECT activity_id, raffle_order_ttl_seconds AS ttl FROM raffle_activity WHERE raffle_order_ttl_seconds IS NOT NULL ORDER BY activity_id',
        );
        return rows.map((r) => ({ activityId: Number(r.activity_id), ttlSeconds: Number(r.ttl) }));
      }),
  };
}
