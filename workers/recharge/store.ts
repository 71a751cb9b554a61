import type { RechargeOrder, Rejection } from '../../domain/recharge';
import { sql, type Tx } from '../../infra/db';
import { lockKey } from '../../infra/stock';
import { mutated } from '../../infra/mutation';

const seen = (suffix: string) => `EXISTS (SELECT 1 FROM raffle_activity_order_${suffix} WHERE user_id = $1 AND out_business_no = $2)
        OR EXISTS (SELECT 1 FROM raffle_activity_order_rejection_${suffix} WHERE user_id = $1 AND out_business_no = $2)`;

/**
 * The text of the recharge transaction's statements, per split-table suffix: the functions below run
 * these, and the bench's database ceiling builds its pgbench script from the same strings
 * (bench/scenarios/ceiling-sql.ts), so that both measure one SQL.
 */
export const RECHARGE_SQL = {
  lockRequest: 'SELECT pg_advisory_xact_lock($1::bigint)',
  alreadyHandled: (suffix: string) => `SELECT ${seen(suffix)} AS seen`,
  alreadyHandledSkuLocked: (suffix: string) => `SELECT pg_advisory_xact_lock_shared($3::bigint), ${seen(suffix)} AS seen`,
  insertRejection: (suffix: string) => `
    INSERT INTO raffle_activity_order_rejection_${suffix} (user_id, sku, out_business_no, code, info, message_id, create_time)
    VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  insertOrderAndCredit: (suffix: string) => `
    WITH ord AS (
      INSERT INTO raffle_activity_order_${suffix} (user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time,
        total_count, day_count, month_count, pay_type, pay_amount, state, out_business_no)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'completed', $13)
    ), d AS (
      UPDATE raffle_activity_account_day SET day_count = day_count + $9, day_count_surplus = day_count_surplus + $9, update_time = now()
      WHERE user_id = $1 AND activity_id = $3 AND day = $14
    ), m AS (
      UPDATE raffle_activity_account_month SET month_count = month_count + $10, month_count_surplus = month_count_surplus + $10, update_time = now()
      WHERE user_id = $1 AND activity_id = $3 AND month = $15
    )
    INSERT INTO raffle_activity_account AS a (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    VALUES ($1, $3, $8, $8, $9, $9, $10, $10)
    ON CONFLICT (user_id, activity_id) DO UPDATE SET
      total_count = a.total_count + $8, total_count_surplus = a.total_count_surplus + $8,
      day_count = a.day_count + $9, day_count_surplus = a.day_count_surplus + $9,
      month_count = a.month_count + $10, month_count_surplus = a.month_count_surplus + $10,
      update_time = now()`,
} as const;

/** Serialises every delivery of one (userId, outBusinessNo) until the end of `tx`. */
export async function lockRequest(tx: Tx, userId: string, outBusinessNo: string): Promise<void> {
  if (mutated('no-request-lock')) return;
  await sql(tx, RECHARGE_SQL.lockRequest, [lockKey(`recharge:${userId}\u001f${outBusinessNo}`)]);
}

/**
 * Already credited, or already refused (its rejection is kept next to the orders, as long as they
 * are). With `skuLock` (`skuLockKey` of infra/stock.ts), the same statement takes the shared side of
 * that SKU's lock, held to the end of `tx`: every take of a limited SKU's stock happens under it.
 */
export async function alreadyHandled(tx: Tx, suffix: string, userId: string, outBusinessNo: string, skuLock?: string): Promise<boolean> {
  const { rows } =
    skuLock === undefined
      ? await sql<{ seen: boolean }>(tx, RECHARGE_SQL.alreadyHandled(suffix), [userId, outBusinessNo])
      : await sql<{ seen: boolean }>(tx, RECHARGE_SQL.alreadyHandledSkuLocked(suffix), [userId, outBusinessNo, skuLock]);
  return rows[0]?.seen === true;
}

/** The refusal, kept so that a redelivery of the same request is a duplicate (its event goes to the outbox with it). */
export async function insertRejection(tx: Tx, suffix: string, r: Rejection): Promise<void> {
  await sql(tx, RECHARGE_SQL.insertRejection(suffix), [r.userId, r.sku, r.outBusinessNo, r.code, r.info, r.messageId, r.time]);
}

/**
 * The order, the account (allowances accumulate) and today's / this month's rows where they exist, in
 * one statement. The account upsert is the main query, which PostgreSQL runs before the unreferenced
 * CTEs: the account row is locked first, as partake does, so the two never deadlock and partake may
 * read the day / month rows under the account lock alone.
 */
export async function insertOrderAndCredit(tx: Tx, suffix: string, o: RechargeOrder, day: string, month: string): Promise<void> {
  await sql(tx, RECHARGE_SQL.insertOrderAndCredit(suffix), [
    o.userId,
    o.sku,
    o.activityId,
    o.activityName,
    o.strategyId,
    o.orderId,
    o.orderTime,
    o.totalCount,
    o.dayCount,
    o.monthCount,
    o.payType,
    o.payAmount,
    o.outBusinessNo,
    day,
    month,
  ]);
}

/** Did this exact order attempt commit? (The reaper asks, under the request lock.) */
export async function orderExists(tx: Tx, suffix: string, orderId: string): Promise<boolean> {
  const { rows } = await sql(tx, `SELECT 1 FROM raffle_activity_order_${suffix} WHERE order_id = $1`, [orderId]);
  return rows.length > 0;
}

export type RebateRow = Readonly<{ userId: string; orderId: string; behavior: string; desc: string; sku: number; outBusinessNo: string; bizId: string }>;

/** False if this biz_id was already granted. */
export async function insertRebateOrder(tx: Tx, suffix: string, r: RebateRow): Promise<boolean> {
  const { count } = await sql(
    tx,
    `
    INSERT INTO user_behavior_rebate_order_${suffix} (user_id, order_id, behavior_type, rebate_desc, rebate_type, rebate_config, out_business_no, biz_id)
    VALUES ($1, $2, $3, $4, 'sku', $5, $6, $7)
    ON CONFLICT (biz_id) DO NOTHING`,
    [r.userId, r.orderId, r.behavior, r.desc.slice(0, 128), String(r.sku), r.outBusinessNo, r.bizId],
  );
  return count === 1;
}
