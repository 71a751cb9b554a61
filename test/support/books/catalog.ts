import type { CatalogFile } from './types';

/** What the test's catalog says about one SKU and its activity. */
export type SkuFacts = Readonly<{ sku: number; stock: number; activityId: number; activity?: ActivityFacts }>;
export type ActivityFacts = Readonly<{ activityId: number; open: boolean; begin: number; end: number }>;

export type CatalogFacts = Readonly<{ skus: Map<number, SkuFacts>; activities: Map<number, ActivityFacts> }>;

export function catalogFacts(c: CatalogFile): CatalogFacts {
  const activities = new Map<number, ActivityFacts>();
  for (const a of c.activities) activities.set(Number(a.activityId), { activityId: Number(a.activityId), open: a.state === 'open', begin: Date.parse(a.beginTime), end: Date.parse(a.endTime) });
  const skus = new Map<number, SkuFacts>();
  for (const s of c.skus) skus.set(Number(s.sku), { sku: Number(s.sku), stock: Number(s.stockCount), activityId: Number(s.activityId), activity: activities.get(Number(s.activityId)) });
  return { skus, activities };
}

/**
 * Why the catalog refuses an order for `activity` at `at` (the code the contract gives), or
 * undefined when it allows it. Written from the contract, not from the service's code.
 */
export function catalogRefusal(activity: ActivityFacts | undefined, at: number): string | undefined {
  if (!activity) return 'ERR_BIZ_010';
  if (!activity.open) return 'ERR_BIZ_003';
  if (at < activity.begin || at >= activity.end) return 'ERR_BIZ_004';
  return undefined;
}
