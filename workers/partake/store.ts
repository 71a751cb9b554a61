import type { DataSource } from 'typeorm';
import type { Period } from '../../domain/calendar';
import type { AccountQuota, DayQuota, MonthQuota, QuotaRows, RaffleOrderState } from '../../domain/partake';
import { sql, type Tx } from '../../infra/db';

/** SQL of the partake worker. Split-table suffixes come from the router only. */

export type RaffleOrder = Readonly<{
  orderId: string;
  userId: string;
  activityId: number;
  activityName: string;
  strategyId: number;
  orderTime: Date;
  orderState: RaffleOrderState;
}>;

type OrderRow = { order_id: string; user_id: string; activity_id: string; activity_name: string; strategy_id: string; order_time: Date; order_state: RaffleOrderState };
const ORDER_COLUMNS = 'order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state';
const toOrder = (r: OrderRow): RaffleOrder => ({
  orderId: r.order_id,
  userId: r.user_id,
  activityId: Number(r.activity_id),
  activityName: r.activity_name,
  strategyId: Number(r.strategy_id),
  orderTime: new Date(r.order_time),
  orderState: r.order_state,
});

/** Locks the account row: concurrent partakes by one user serialize here. */
export async function lockAccount(tx: Tx, userId: string, activityId: number): Promise<AccountQuota | undefined> {
  const { rows } = await sql<{ total_count: number; total_count_surplus: number; day_count: number; month_count: number }>(tx,
    `SELECT total_count, total_count_surplus, day_count, month_count FROM raffle_activity_account
     WHERE user_id = $1 AND activity_id = $2 FOR UPDATE`, [userId, activityId]);
  const r = rows[0];
  return r && { totalCount: r.total_count, totalSurplus: r.total_count_surplus, dayCount: r.day_count, monthCount: r.month_count };
}

export async function findOpenOrder(tx: Tx, suffix: string, userId: string, activityId: number): Promise<RaffleOrder | undefined> {
  const { rows } = await sql<OrderRow>(tx,
    `SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${suffix} WHERE user_id = $1 AND activity_id = $2 AND order_state = 'create' LIMIT 1`,
    [userId, activityId]);
  return rows[0] && toOrder(rows[0]);
}

export async function lockDay(tx: Tx, userId: string, activityId: number, day: string): Promise<DayQuota | undefined> {
  const { rows } = await sql<{ day_count: number; day_count_surplus: number }>(tx,
    `SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = $1 AND activity_id = $2 AND day = $3 FOR UPDATE`,
    [userId, activityId, day]);
  return rows[0] && { day, count: rows[0].day_count, surplus: rows[0].day_count_surplus };
}

export async function lockMonth(tx: Tx, userId: string, activityId: number, month: string): Promise<MonthQuota | undefined> {
  const { rows } = await sql<{ month_count: number; month_count_surplus: number }>(tx,
    `SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = $1 AND activity_id = $2 AND month = $3 FOR UPDATE`,
    [userId, activityId, month]);
  return rows[0] && { month, count: rows[0].month_count, surplus: rows[0].month_count_surplus };
}

export async function createDay(tx: Tx, userId: string, activityId: number, day: string, count: number, surplus: number, now: Date): Promise<void> {
  await sql(tx,
    `INSERT INTO raffle_activity_account_day (user_id, activity_id, day, day_count, day_count_surplus, create_time, update_time)
     VALUES ($1, $2, $3, $4, $5, $6, $6)`, [userId, activityId, day, count, surplus, now]);
}

export async function createMonth(tx: Tx, userId: string, activityId: number, month: string, count: number, surplus: number, now: Date): Promise<void> {
  await sql(tx,
    `INSERT INTO raffle_activity_account_month (user_id, activity_id, month, month_count, month_count_surplus, create_time, update_time)
     VALUES ($1, $2, $3, $4, $5, $6, $6)`, [userId, activityId, month, count, surplus, now]);
}

/** Guarded: false when the row had no surplus left (a broken invariant under the account lock). */
export async function decrementDay(tx: Tx, userId: string, activityId: number, day: string, now: Date): Promise<boolean> {
  const { count } = await sql(tx,
    `UPDATE raffle_activity_account_day SET day_count_surplus = day_count_surplus - 1, update_time = $4
     WHERE user_id = $1 AND activity_id = $2 AND day = $3 AND day_count_surplus > 0`, [userId, activityId, day, now]);
  return count === 1;
}

export async function decrementMonth(tx: Tx, userId: string, activityId: number, month: string, now: Date): Promise<boolean> {
  const { count } = await sql(tx,
    `UPDATE raffle_activity_account_month SET month_count_surplus = month_count_surplus - 1, update_time = $4
     WHERE user_id = $1 AND activity_id = $2 AND month = $3 AND month_count_surplus > 0`, [userId, activityId, month, now]);
  return count === 1;
}

/** Total − 1 (guarded) and the mirror columns set to today's / this month's surplus. */
export async function deductAccount(tx: Tx, userId: string, activityId: number, daySurplus: number, monthSurplus: number, now: Date): Promise<boolean> {
  const { count } = await sql(tx,
    `UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1,
       day_count_surplus = $3, month_count_surplus = $4, update_time = $5
     WHERE user_id = $1 AND activity_id = $2 AND total_count_surplus > 0`, [userId, activityId, daySurplus, monthSurplus, now]);
  return count === 1;
}

export async function insertOrder(tx: Tx, suffix: string, o: RaffleOrder): Promise<void> {
  await sql(tx,
    `INSERT INTO user_raffle_order_${suffix} (${ORDER_COLUMNS}, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $6)`,
    [o.orderId, o.userId, o.activityId, o.activityName, o.strategyId, o.orderTime, o.orderState]);
}

/** `create` → `used`, once: the updated order, or undefined when it was not `create`. */
export async function useOrder(ds: DataSource, suffix: string, userId: string, orderId: string, now: Date): Promise<RaffleOrder | undefined> {
  const { rows } = await sql<OrderRow>(ds,
    `UPDATE user_raffle_order_${suffix} SET order_state = 'used', update_time = $3
     WHERE user_id = $1 AND order_id = $2 AND order_state = 'create' RETURNING ${ORDER_COLUMNS}`, [userId, orderId, now]);
  return rows[0] && toOrder(rows[0]);
}

export async function findOrder(ds: DataSource, suffix: string, userId: string, orderId: string): Promise<RaffleOrder | undefined> {
  const { rows } = await sql<OrderRow>(ds,
    `SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${suffix} WHERE user_id = $1 AND order_id = $2`, [userId, orderId]);
  return rows[0] && toOrder(rows[0]);
}

/** Account with today's and this month's rows in one statement (one snapshot). */
export async function readQuota(ds: DataSource, userId: string, activityId: number, period: Period): Promise<QuotaRows> {
  const { rows } = await sql<{
    total_count: number; total_count_surplus: number; day_count: number; month_count: number;
    d_count: number | null; d_surplus: number | null; m_count: number | null; m_surplus: number | null;
  }>(ds,
    `SELECT a.total_count, a.total_count_surplus, a.day_count, a.month_count,
            d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus
     FROM raffle_activity_account a
     LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = $3
     LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = $4
     WHERE a.user_id = $1 AND a.activity_id = $2`, [userId, activityId, period.day, period.month]);
  const r = rows[0];
  if (!r) return {};
  return {
    account: { totalCount: r.total_count, totalSurplus: r.total_count_surplus, dayCount: r.day_count, monthCount: r.month_count },
    day: r.d_count === null ? undefined : { day: period.day, count: r.d_count, surplus: r.d_surplus! },
    month: r.m_count === null ? undefined : { month: period.month, count: r.m_count, surplus: r.m_surplus! },
  };
}
