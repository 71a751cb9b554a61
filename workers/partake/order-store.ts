import type { CancelDecision, RaffleOrder } from '../../domain/raffle-order';
import { type Db, sql, type Tx } from '../../infra/db';
import { insertTaskFrom, taskParams, type TaskRow } from '../../infra/outbox';
import { ctePerSuffix, unionPerSuffix } from '../../infra/split-tables';
import { ORDER_COLUMNS, orderColumnsOf, toOrder, type OrderRow } from './store';

/** SQL of a raffle order's life after partake: used, cancelled (refunded), expired. Suffixes come from the router only. */

/** The `raffle-order.used` statement (also run by the bench's database ceiling, bench/scenarios/ceiling-sql.ts). */
export const USE_ORDER_SQL = (suffix: string) => `UPDATE user_raffle_order_${suffix} SET order_state = 'used', update_time = $3, changed_by = $4
     WHERE user_id = $1 AND order_id = $2 AND order_state = 'create' RETURNING ${ORDER_COLUMNS}`;

/** `create` → `used`, once, remembering the request (`changed_by`): the updated order, or undefined when it was not `create`. */
export async function useOrder(tx: Tx, suffix: string, userId: string, orderId: string, requestId: string | undefined, now: Date): Promise<RaffleOrder | undefined> {
  const { rows } = await sql<OrderRow>(tx, USE_ORDER_SQL(suffix), [userId, orderId, now, requestId ?? null]);
  return rows[0] && toOrder(rows[0]);
}

/** One use in a group's: the order's split table, user, order id, time and request. */
export type UseQuery = Readonly<{ suffix: string; userId: string; orderId: string; now: Date; requestId: string | undefined }>;

/**
 * `useOrder` for a group of distinct users in one statement (one UPDATE per split table, from
 * `unnest` of parallel arrays): the used order per query, in order, or undefined where it was not `create`.
 * Each order is found by its unique `order_id`. The state it leaves is a parameter (`$6`): with a
 * literal `'create'` the partial index of open orders qualifies too, and on a new table, where
 * PostgreSQL's estimates tie, the generic plan read that whole index for every group
 * (test/int/plans.int.test.ts).
 */
export async function useOrders(tx: Tx, suffixes: readonly string[], qs: readonly UseQuery[]): Promise<Array<RaffleOrder | undefined>> {
  const { rows } = await sql<OrderRow & { i: string }>(
    tx,
    `WITH v AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS v(suffix, user_id, order_id, now, request_id, i)
     ), ${ctePerSuffix(
       'u',
       suffixes,
       (t) => `
       UPDATE user_raffle_order_${t} x SET order_state = 'used', update_time = v.now, changed_by = v.request_id
       FROM v WHERE v.suffix = '${t}' AND x.order_id = v.order_id AND x.user_id = v.user_id AND x.order_state = $6
       RETURNING v.i, ${orderColumnsOf('x')}`,
     )}
     ${unionPerSuffix('u', suffixes)}`,
    [qs.map((q) => q.suffix), qs.map((q) => q.userId), qs.map((q) => q.orderId), qs.map((q) => q.now), qs.map((q) => q.requestId ?? null), 'create'],
  );
  const out: Array<RaffleOrder | undefined> = qs.map(() => undefined);
  for (const r of rows) out[Number(r.i) - 1] = toOrder(r);
  return out;
}

/** The order as it is, with the request that moved it out of `create` and when (`update_time` of that change). */
export type FoundOrder = RaffleOrder & Readonly<{ changedBy: string | null; changedAt: Date }>;

type ChangeColumns = { changed_by: string | null; update_time: Date };
const toFound = (r: OrderRow & ChangeColumns): FoundOrder => ({ ...toOrder(r), changedBy: r.changed_by, changedAt: new Date(r.update_time) });

export async function findOrder(tx: Tx, suffix: string, userId: string, orderId: string): Promise<FoundOrder | undefined> {
  const { rows } = await sql<OrderRow & ChangeColumns>(tx, `SELECT ${ORDER_COLUMNS}, changed_by, update_time FROM user_raffle_order_${suffix} WHERE user_id = $1 AND order_id = $2`, [userId, orderId]);
  return rows[0] && toFound(rows[0]);
}

/**
 * The order, with its account row locked (`FOR UPDATE`): the account comes first, as in partake and
 * recharge, so a cancel never waits in a cycle with them. Undefined when the order or its account is
 * missing. The state read here may be overtaken by a racing use: `applyCancel` is guarded.
 */
export async function lockForCancel(tx: Tx, suffix: string, userId: string, orderId: string): Promise<FoundOrder | undefined> {
  const { rows } = await sql<OrderRow & ChangeColumns>(
    tx,
    `SELECT ${orderColumnsOf('o')}, o.changed_by, o.update_time
     FROM user_raffle_order_${suffix} o
     JOIN raffle_activity_account a ON a.user_id = o.user_id AND a.activity_id = o.activity_id
     WHERE o.user_id = $1 AND o.order_id = $2
     FOR UPDATE OF a`,
    [userId, orderId],
  );
  return rows[0] && toFound(rows[0]);
}

/**
 * The cancel and its refund in one statement, all guarded by `create` → `cancel` matching: a use that
 * won the race leaves nothing to refund. Total + 1; today's / this month's row + 1 when the refund
 * says so, with the account's mirrors set from them; the outbox task. `ok` false: the order was no
 * longer `create`.
 */
export async function applyCancel(
  tx: Tx,
  suffix: string,
  c: Extract<CancelDecision, { kind: 'cancel' }>,
  requestId: string | undefined,
  task: TaskRow,
  now: Date,
): Promise<{ ok: boolean; taskId?: string }> {
  const { rows } = await sql<{ n: number; task_id: string | null }>(
    tx,
    `WITH o AS (
       UPDATE user_raffle_order_${suffix} SET order_state = 'cancel', update_time = $3, changed_by = $8
       WHERE user_id = $1 AND order_id = $2 AND order_state = 'create'
       RETURNING activity_id
     ), d AS (
       UPDATE raffle_activity_account_day SET day_count_surplus = day_count_surplus + 1, update_time = $3
       WHERE $4 AND user_id = $1 AND activity_id = (SELECT activity_id FROM o) AND day = $5
       RETURNING day_count_surplus AS surplus
     ), m AS (
       UPDATE raffle_activity_account_month SET month_count_surplus = month_count_surplus + 1, update_time = $3
       WHERE $6 AND user_id = $1 AND activity_id = (SELECT activity_id FROM o) AND month = $7
       RETURNING month_count_surplus AS surplus
     ), a AS (
       UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus + 1,
         day_count_surplus = coalesce((SELECT surplus FROM d), day_count_surplus),
         month_count_surplus = coalesce((SELECT surplus FROM m), month_count_surplus), update_time = $3
       WHERE user_id = $1 AND activity_id = (SELECT activity_id FROM o)
       RETURNING 1
     ), t AS (
       ${insertTaskFrom('a', 9, 3)}
     )
     SELECT (SELECT count(*)::int FROM a) AS n, (SELECT id::text FROM t) AS task_id`,
    [c.order.userId, c.order.orderId, now, c.refund.day === 1, c.period.day, c.refund.month === 1, c.period.month, requestId ?? null, ...taskParams(task)],
  );
  return { ok: rows[0]?.n === 1, taskId: rows[0]?.task_id ?? undefined };
}

export type Due = Readonly<{ userId: string; orderId: string }>;

/** Unused orders of one activity made at or before `cutoff`, oldest first (partial index `_expiry`). */
export async function expiredOrders(ds: Db, suffix: string, activityId: number, cutoff: Date, limit: number): Promise<Due[]> {
  const { rows } = await sql<{ user_id: string; order_id: string }>(
    ds,
    `SELECT user_id, order_id FROM user_raffle_order_${suffix}
     WHERE order_state = 'create' AND activity_id = $1 AND order_time <= $2
     ORDER BY order_time LIMIT $3`,
    [activityId, cutoff, limit],
  );
  return rows.map((r) => ({ userId: r.user_id, orderId: r.order_id }));
}
