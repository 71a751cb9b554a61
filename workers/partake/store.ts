import type { Period } from '../../domain/calendar';
import type { Deduction, LockedQuota, PeriodWrite, QuotaRows } from '../../domain/partake';
import type { RaffleOrder, RaffleOrderState } from '../../domain/raffle-order';
import { type Db, sql, type Tx } from '../../infra/db';
import { insertTaskFrom, insertTaskRowsFrom, TASK_ROW_NAMES, taskArrayParams, taskParams, taskRowArrays, type TaskRow } from '../../infra/outbox';
import { bySuffix, ctePerSuffix, unionPerSuffix } from '../../infra/split-tables';

/** SQL of the partake worker's quota (partake, query). Split-table suffixes come from the router only. */

export type OrderRow = { order_id: string; user_id: string; activity_id: string; activity_name: string; strategy_id: string; order_time: Date; order_state: RaffleOrderState };
export const ORDER_COLUMNS = 'order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state';
/** `ORDER_COLUMNS` of the table aliased `alias`. */
export const orderColumnsOf = (alias: string): string =>
  ORDER_COLUMNS.split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
export const toOrder = (r: OrderRow): RaffleOrder => ({
  orderId: r.order_id,
  userId: r.user_id,
  activityId: Number(r.activity_id),
  activityName: r.activity_name,
  strategyId: Number(r.strategy_id),
  orderTime: new Date(r.order_time),
  orderState: r.order_state,
});

/**
 * The text of the partake transaction's statements, per split-table suffix: the handlers below run
 * these, and the bench's database ceiling builds its pgbench script from the same strings
 * (bench/scenarios/ceiling-sql.ts), so that both measure one SQL.
 */
export const PARTAKE_SQL = {
  lockQuota: (suffix: string) => `SELECT a.total_count, a.total_count_surplus, a.day_count, a.month_count,
            d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus,
            (SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${suffix}
               WHERE user_id = $1 AND activity_id = $2 AND order_state = 'create' LIMIT 1) o) AS open,
            (SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${suffix}
               WHERE user_id = $1 AND activity_id = $2 AND request_id = $5) o) AS mine
     FROM raffle_activity_account a
     LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = $3
     LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = $4
     WHERE a.user_id = $1 AND a.activity_id = $2
     FOR UPDATE OF a`,
  applyPartake: (suffix: string) => `WITH m AS (
       INSERT INTO raffle_activity_account_month AS r (user_id, activity_id, month, month_count, month_count_surplus, create_time, update_time)
       VALUES ($1, $2, $3, $4, greatest($4 - 1, 0), $7, $7)
       ON CONFLICT (user_id, activity_id, month) DO UPDATE SET month_count_surplus = r.month_count_surplus - 1, update_time = $7
         WHERE r.month_count_surplus > 0
       RETURNING month_count_surplus AS surplus
     ), d AS (
       INSERT INTO raffle_activity_account_day AS r (user_id, activity_id, day, day_count, day_count_surplus, create_time, update_time)
       VALUES ($1, $2, $5, $6, greatest($6 - 1, 0), $7, $7)
       ON CONFLICT (user_id, activity_id, day) DO UPDATE SET day_count_surplus = r.day_count_surplus - 1, update_time = $7
         WHERE r.day_count_surplus > 0
       RETURNING day_count_surplus AS surplus
     ), a AS (
       UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1,
         day_count_surplus = (SELECT surplus FROM d), month_count_surplus = (SELECT surplus FROM m), update_time = $7
       WHERE user_id = $1 AND activity_id = $2 AND total_count_surplus > 0
         AND EXISTS (SELECT 1 FROM d) AND EXISTS (SELECT 1 FROM m)
       RETURNING 1
     ), o AS (
       INSERT INTO user_raffle_order_${suffix} (${ORDER_COLUMNS}, create_time, update_time, request_id)
       SELECT $8, $1, $2, $9, $10, $7, 'create', $7, $7, $11 FROM a
       RETURNING 1
     ), t AS (
       ${insertTaskFrom('o', 12, 7)}
     )
     SELECT (SELECT count(*)::int FROM o) AS n, (SELECT id::text FROM t) AS task_id`,
  /**
   * `lockQuota` for a group's users at once (unnest of parallel arrays, see `lockQuotas`). The
   * account rows are locked in key order, `COLLATE "C"` as group commit sorts its units.
   */
  lockQuotas: (suffixes: readonly string[]) => `SELECT v.i::int AS i, a.total_count, a.total_count_surplus, a.day_count, a.month_count,
            d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus,
            ${bySuffix(
              'v.suffix',
              suffixes,
              (t) => `(SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${t}
               WHERE user_id = v.user_id AND activity_id = v.activity_id AND order_state = 'create' LIMIT 1) o)`,
            )} AS open,
            ${bySuffix(
              'v.suffix',
              suffixes,
              (t) => `(SELECT row_to_json(o) FROM (SELECT ${ORDER_COLUMNS} FROM user_raffle_order_${t}
               WHERE user_id = v.user_id AND activity_id = v.activity_id AND request_id = v.request_id) o)`,
            )} AS mine
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS v(suffix, user_id, activity_id, day, month, request_id, i)
     JOIN raffle_activity_account a ON a.user_id = v.user_id AND a.activity_id = v.activity_id
     LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = v.day
     LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = v.month
     ORDER BY a.user_id COLLATE "C"
     FOR UPDATE OF a`,
  /** `applyPartake` for a group's partakes at once: one row per partake in `v`, one order insert per split table. */
  applyPartakes: (suffixes: readonly string[]) => `WITH v AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::int[], $8::timestamptz[], $9::text[],
         $10::text[], $11::bigint[], $12::text[], ${taskArrayParams(13)})
         AS v(suffix, user_id, activity_id, month, month_count, day, day_count, now, order_id, activity_name, strategy_id, request_id, ${TASK_ROW_NAMES})
     ), m AS (${spendPeriods('month')}
     ), d AS (${spendPeriods('day')}
     ), a AS (
       UPDATE raffle_activity_account x SET total_count_surplus = x.total_count_surplus - 1,
         day_count_surplus = d.surplus, month_count_surplus = m.surplus, update_time = v.now
       FROM v JOIN d USING (user_id, activity_id) JOIN m USING (user_id, activity_id)
       WHERE x.user_id = v.user_id AND x.activity_id = v.activity_id AND x.total_count_surplus > 0
       RETURNING x.user_id
     ), ${ctePerSuffix(
       'o',
       suffixes,
       (t) => `
       INSERT INTO user_raffle_order_${t} (${ORDER_COLUMNS}, create_time, update_time, request_id)
       SELECT v.order_id, v.user_id, v.activity_id, v.activity_name, v.strategy_id, v.now, 'create', v.now, v.now, v.request_id
       FROM v JOIN a USING (user_id) WHERE v.suffix = '${t}'
       RETURNING user_id`,
     )}, o AS (${unionPerSuffix('o', suffixes, 'user_id')}
     ), t AS (
       ${insertTaskRowsFrom(`(SELECT ${TASK_ROW_NAMES} FROM v JOIN o USING (user_id)) s`)}
     )
     SELECT v.user_id, o.user_id IS NOT NULL AS ok, t.id AS task_id
     FROM v LEFT JOIN o USING (user_id) LEFT JOIN t ON t.message_id = v.message_id`,
} as const;

/** A group's day or month rows, as `applyPartake`'s: created spent once, or one more spent where some are left. */
const spendPeriods = (p: 'day' | 'month') => `
       INSERT INTO raffle_activity_account_${p} AS r (user_id, activity_id, ${p}, ${p}_count, ${p}_count_surplus, create_time, update_time)
       SELECT user_id, activity_id, ${p}, ${p}_count, greatest(${p}_count - 1, 0), now, now FROM v
       ON CONFLICT (user_id, activity_id, ${p}) DO UPDATE SET ${p}_count_surplus = r.${p}_count_surplus - 1, update_time = excluded.update_time
         WHERE r.${p}_count_surplus > 0
       RETURNING r.user_id, r.activity_id, r.${p}_count_surplus AS surplus`;

/**
 * One round trip: locks the account row (concurrent partakes by one user serialize here) and reads
 * the unused order, the order an earlier delivery of this request created (by `requestId`, the
 * request's message id; none without one), today's and this month's rows. Writers of those rows (recharge, partake) take
 * the account row first, so under this lock they are current without a lock of their own.
 */
export async function lockQuota(tx: Tx, suffix: string, userId: string, activityId: number, period: Period, requestId: string | undefined): Promise<LockedQuota> {
  const { rows } = await sql<LockedRow>(tx, PARTAKE_SQL.lockQuota(suffix), [userId, activityId, period.day, period.month, requestId ?? null]);
  return rows[0] ? toLocked(rows[0], period) : {};
}

type LockedRow = QuotaRow & { open: OrderRow | null; mine: OrderRow | null };
const toLocked = (r: LockedRow, period: Period): LockedQuota => ({ ...toQuota(r, period), open: r.open ? toOrder(r.open) : undefined, mine: r.mine ? toOrder(r.mine) : undefined });

/**
 * The whole deduction in one statement: this month's and today's rows (created on first use, else
 * decremented, guarded), the account's total (guarded) with its mirrors set from those rows, the
 * raffle order (with the request's message id, if any), and its outbox task. `ok` false when a guard matched nothing: a broken invariant,
 * the caller rolls back. `taskId` is absent when the task's message id was already there.
 */
export async function applyPartake(tx: Tx, suffix: string, d: Deduction, o: RaffleOrder, requestId: string | undefined, task: TaskRow): Promise<{ ok: boolean; taskId?: string }> {
  const { period } = d;
  const { rows } = await sql<{ n: number; task_id: string | null }>(tx, PARTAKE_SQL.applyPartake(suffix), [
    o.userId,
    o.activityId,
    period.month,
    createCount(d.month),
    period.day,
    createCount(d.day),
    o.orderTime,
    o.orderId,
    o.activityName,
    o.strategyId,
    requestId ?? null,
    ...taskParams(task),
  ]);
  return { ok: rows[0]?.n === 1, taskId: rows[0]?.task_id ?? undefined };
}

/** One user's `lockQuota` in a group's. */
export type QuotaQuery = Readonly<{ suffix: string; userId: string; activityId: number; period: Period; requestId: string | undefined }>;

/** `lockQuota` for a group of distinct users in one statement: one answer per query, in order. */
export async function lockQuotas(tx: Tx, suffixes: readonly string[], qs: readonly QuotaQuery[]): Promise<LockedQuota[]> {
  const { rows } = await sql<LockedRow & { i: number }>(tx, PARTAKE_SQL.lockQuotas(suffixes), [
    qs.map((q) => q.suffix),
    qs.map((q) => q.userId),
    qs.map((q) => q.activityId),
    qs.map((q) => q.period.day),
    qs.map((q) => q.period.month),
    qs.map((q) => q.requestId ?? null),
  ]);
  const out: LockedQuota[] = qs.map(() => ({}));
  for (const r of rows) {
    out[r.i - 1] = toLocked(r, qs[r.i - 1]!.period);
  }
  return out;
}

/** One partake's `applyPartake` in a group's. */
export type PartakeWrite = Readonly<{ suffix: string; deduction: Deduction; order: RaffleOrder; requestId: string | undefined; task: TaskRow }>;

/** `applyPartake` for a group of distinct users in one statement: one answer per write, in order. */
export async function applyPartakes(tx: Tx, suffixes: readonly string[], ws: readonly PartakeWrite[]): Promise<Array<{ ok: boolean; taskId?: string }>> {
  const { rows } = await sql<{ user_id: string; ok: boolean; task_id: string | null }>(tx, PARTAKE_SQL.applyPartakes(suffixes), [
    ws.map((w) => w.suffix),
    ws.map((w) => w.order.userId),
    ws.map((w) => w.order.activityId),
    ws.map((w) => w.deduction.period.month),
    ws.map((w) => createCount(w.deduction.month)),
    ws.map((w) => w.deduction.period.day),
    ws.map((w) => createCount(w.deduction.day)),
    ws.map((w) => w.order.orderTime),
    ws.map((w) => w.order.orderId),
    ws.map((w) => w.order.activityName),
    ws.map((w) => w.order.strategyId),
    ws.map((w) => w.requestId ?? null),
    ...taskRowArrays(ws.map((w) => w.task)),
  ]);
  const byUser = new Map(rows.map((r) => [r.user_id, r]));
  return ws.map((w) => {
    const r = byUser.get(w.order.userId);
    return { ok: r?.ok === true, taskId: r?.task_id ?? undefined };
  });
}

/**
 * The count a period row starts with when this partake creates it. On a decrement the row exists and
 * the proposed insert is discarded, but CHECKs still see it: hence 0 and `greatest(… - 1, 0)`.
 */
const createCount = (w: PeriodWrite): number => (w.kind === 'create' ? w.count : 0);

/** Account with today's and this month's rows in one statement (one snapshot). */
export async function readQuota(ds: Db, userId: string, activityId: number, period: Period): Promise<QuotaRows> {
  const { rows } = await sql<QuotaRow>(
    ds,
    `SELECT a.total_count, a.total_count_surplus, a.day_count, a.month_count,
            d.day_count AS d_count, d.day_count_surplus AS d_surplus, m.month_count AS m_count, m.month_count_surplus AS m_surplus
     FROM raffle_activity_account a
     LEFT JOIN raffle_activity_account_day d ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = $3
     LEFT JOIN raffle_activity_account_month m ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = $4
     WHERE a.user_id = $1 AND a.activity_id = $2`,
    [userId, activityId, period.day, period.month],
  );
  return rows[0] ? toQuota(rows[0], period) : {};
}

type QuotaRow = {
  total_count: number;
  total_count_surplus: number;
  day_count: number;
  month_count: number;
  d_count: number | null;
  d_surplus: number | null;
  m_count: number | null;
  m_surplus: number | null;
};

const toQuota = (r: QuotaRow, period: Period): QuotaRows => ({
  account: { totalCount: r.total_count, totalSurplus: r.total_count_surplus, dayCount: r.day_count, monthCount: r.month_count },
  day: r.d_count === null ? undefined : { day: period.day, count: r.d_count, surplus: r.d_surplus! },
  month: r.m_count === null ? undefined : { month: period.month, count: r.m_count, surplus: r.m_surplus! },
});
