import type { Logger } from './log';
import type { Redis } from './redis';
import { giveBackStock, releaseStock, takeStock, type Reservation, type Take } from './stock';

/**
 * The stock units one unit of work has taken (docs/DESIGN.md "Stock protocol"): `take` inside the
 * transaction, then exactly one of `settle` (committed: the units are orders now) or `undo` (rolled
 * back: the units go back). Neither throws: what they cannot do, the reaper does. When the commit's
 * outcome is unknown, call neither: `holding()` stays true and the reaper settles.
 */
export type StockHold = Readonly<{
  take(sku: number, userId: string, outBusinessNo: string, orderId: string): Promise<Take>;
  settle(): Promise<void>;
  undo(): Promise<void>;
  holding(): boolean;
}>;

export function stockHold(redis: Redis, log: Logger): StockHold {
  let held: Reservation[] = [];
  const drain = (): Reservation[] => {
    const taken = held;
    held = [];
    return taken;
  };
  return {
    async take(sku, userId, outBusinessNo, orderId) {
      const t = await takeStock(redis, sku, userId, outBusinessNo, orderId);
      if (t.kind === 'taken') held.push(t.reservation);
      return t;
    },
    async settle() {
      await Promise.all(drain().map((r) => releaseStock(redis, r))).catch((err) => log.warn({ err }, 'reservation not released, the reaper will'));
    },
    async undo() {
      await Promise.all(drain().map((r) => giveBackStock(redis, r))).catch((err) => log.warn({ err }, 'unit not given back, the reaper will'));
    },
    holding: () => held.length > 0,
  };
}
