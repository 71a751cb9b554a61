import { type Db, sql } from '../../infra/db';
import type { HistoryRequest } from './message';

/** `activity.account.history` data (contract §5): newest first, each list at most `limit`. */
export type History = Readonly<{
  recharges: ReadonlyArray<{
    orderId: string;
    sku: number;
    outBusinessNo: string;
    totalCount: number;
    dayCount: number;
    monthCount: number;
    payType: string;
    payAmount: string;
    orderTime: string;
  }>;
  raffleOrders: ReadonlyArray<{ orderId: string; orderState: string; orderTime: string }>;
}>;

type RechargeRow = { order_id: string; sku: string; out_business_no: string; total_count: number; day_count: number; month_count: number; pay_type: string; pay_amount: string; order_time: string };
type RaffleRow = { order_id: string; order_state: string; order_time: string };

/**
 * Both lists in one statement (one snapshot, so they add up with each other), each an index range
 * scan of `(activity_id, user_id, order_time)` below `before` (exclusive; none = no bound).
 */
export async function readHistory(ds: Db, suffix: string, req: HistoryRequest): Promise<History> {
  const { rows } = await sql<{ recharges: RechargeRow[]; raffle: RaffleRow[] }>(
    ds,
    `SELECT
       (SELECT coalesce(json_agg(r), '[]') FROM (
          SELECT order_id, sku::text AS sku, out_business_no, total_count, day_count, month_count, pay_type, pay_amount::text AS pay_amount, order_time
          FROM raffle_activity_order_${suffix}
          WHERE user_id = $1 AND activity_id = $2 AND order_time < $3
          ORDER BY order_time DESC, order_id DESC LIMIT $4) r) AS recharges,
       (SELECT coalesce(json_agg(o), '[]') FROM (
          SELECT order_id, order_state, order_time
          FROM user_raffle_order_${suffix}
          WHERE user_id = $1 AND activity_id = $2 AND order_time < $3
          ORDER BY order_time DESC, order_id DESC LIMIT $4) o) AS raffle`,
    [req.userId, req.activityId, req.before === undefined ? 'infinity' : new Date(req.before), req.limit],
  );
  const r = rows[0]!;
  return {
    recharges: r.recharges.map((x) => ({
      orderId: x.order_id,
      sku: Number(x.sku),
      outBusinessNo: x.out_business_no,
      totalCount: x.total_count,
      dayCount: x.day_count,
      monthCount: x.month_count,
      payType: x.pay_type,
      payAmount: x.pay_amount,
      orderTime: new Date(x.order_time).toISOString(),
    })),
    raffleOrders: r.raffle.map((x) => ({ orderId: x.order_id, orderState: x.order_state, orderTime: new Date(x.order_time).toISOString() })),
  };
}
