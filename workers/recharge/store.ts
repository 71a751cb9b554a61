import type { RechargeOrder, Rejection } from '../../domain/recharge';
import { sql, type Tx } from '../../infra/db';
import { lockKey } from '../../infra/stock';
import { mutated } from '../../infra/mutation';
import { bySuffix, ctePerSuffix } from '../../infra/split-tables';

/**
 * Whether a request was handled: its order or its refusal is there (each unique by user and
 * `out_business_no`). Scalar subqueries, not `EXISTS`: for an `EXISTS` correlated with a group's
 * rows (`alreadyHandledAll`) PostgreSQL may choose a hashed subplan, which reads and hashes the whole
 * table on every execution, and a generic plan made while the tables were new kept doing so as they
 * grew (docs/BENCHMARKS.md, hot path row 26). A scalar subquery is looked up row by row.
 */
const seen = (suffix: string, user = '$1', no = '$2') => `(SELECT true FROM raffle_activity_order_${suffix} WHERE user_id = ${user} AND out_business_no = ${no}) IS NOT NULL
        OR (SELECT true FROM raffle_activity_order_rejection_${suffix} WHERE user_id = ${user} AND out_business_no = ${no}) IS NOT NULL`;

/**
 * The text of the recharge transaction's statements, per split-table suffix: the functions below run
 * these, and the bench's database ceiling builds its pgbench script from the same strings
 * (bench/scenarios/ceiling-sql.ts), so that both measure one SQL.
 */
export const RECHARGE_SQL = {
  lockRequest: 'SELECT pg_advisory_xact_lock($1::bigint)',
  alreadyHandled: (suffix: string) => `SELECT ${seen(suffix)} AS seen`,
  alreadyHandledSkuLocked: (suffix: string) => `SELECT pg_advisory_xact_lock_shared($3::bigint), ${seen(suffix)} AS seen`,
  /** `lockRequest` for a group's requests, then its SKUs' shared locks (see `lockRequests`). */
  lockRequestsAndSkus: `SELECT count(CASE WHEN x.shared THEN pg_advisory_xact_lock_shared(x.k) ELSE pg_advisory_xact_lock(x.k) END)
     FROM unnest($1::bigint[], $2::bool[]) AS x(k, shared)`,
  /** `alreadyHandled` for a group's requests (see `alreadyHandledAll`). */
  alreadyHandledAll: (suffixes: readonly string[]) =>
    `SELECT x.i, ${bySuffix('x.suffix', suffixes, (t) => seen(t, 'x.user_id', 'x.out_business_no'))} AS seen
     FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(suffix, user_id, out_business_no, i)`,
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

const requestKey = (userId: string, outBusinessNo: string) => lockKey(`recharge:${userId}\u001f${outBusinessNo}`);

/** Serialises every delivery of one (userId, outBusinessNo) until the end of `tx`. */
export async function lockRequest(tx: Tx, userId: string, outBusinessNo: string): Promise<void> {
  if (mutated('no-request-lock')) return;
  await sql(tx, RECHARGE_SQL.lockRequest, [requestKey(userId, outBusinessNo)]);
}

/** One recharge request of a group's, on its split table. */
export type RequestRef = Readonly<{ suffix: string; userId: string; outBusinessNo: string; skuLock?: string }>;

/**
 * `lockRequest` for a group's requests in one statement, taken in the group's order (its users'):
 * each waits in turn, as one statement per request would. Then, in the same statement, the shared
 * locks of the limited SKUs among them, each once, in ascending key order: a group that waits for a
 * SKU lock (queued behind a rebuild's exclusive request) holds only lower ones, so groups and
 * rebuilds of several SKUs at once cannot wait on each other in a circle (docs/DESIGN.md, "No
 * deadlocks between groups"). The locks are taken by one scan of the arrays, in their order.
 */
export async function lockRequests(tx: Tx, rs: readonly RequestRef[]): Promise<void> {
  const requests = mutated('no-request-lock') ? [] : rs.map((r) => requestKey(r.userId, r.outBusinessNo));
  const skus = inKeyOrder(rs.flatMap((r) => (r.skuLock === undefined ? [] : [r.skuLock])));
  if (!requests.length && !skus.length) return;
  await sql(tx, RECHARGE_SQL.lockRequestsAndSkus, [
    [...requests, ...skus],
    [...requests.map(() => false), ...skus.map(() => true)],
  ]);
}

/** Distinct advisory lock keys (signed 64-bit, as text) in ascending numeric order. */
export function inKeyOrder(keys: readonly string[]): string[] {
  return [...new Set(keys)]
    .map(BigInt)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map(String);
}

/**
 * `alreadyHandled` for a group's requests in one statement (after `lockRequests`, in a statement of
 * its own: its snapshot must see what the lock's last holder committed): one answer per request, in
 * order.
 */
export async function alreadyHandledAll(tx: Tx, suffixes: readonly string[], rs: readonly RequestRef[]): Promise<boolean[]> {
  const { rows } = await sql<{ i: string; seen: boolean }>(tx, RECHARGE_SQL.alreadyHandledAll(suffixes), [rs.map((r) => r.suffix), rs.map((r) => r.userId), rs.map((r) => r.outBusinessNo)]);
  const out = rs.map(() => false);
  for (const r of rows) out[Number(r.i) - 1] = r.seen === true;
  return out;
}

/** `insertRejection` for a group's refusals in one statement (one insert per split table). */
export async function insertRejections(tx: Tx, suffixes: readonly string[], rs: ReadonlyArray<Readonly<{ suffix: string; rejection: Rejection }>>): Promise<void> {
  if (!rs.length) return;
  const inserts = ctePerSuffix(
    'r',
    suffixes,
    (t) => `INSERT INTO raffle_activity_order_rejection_${t} (user_id, sku, out_business_no, code, info, message_id, create_time)
       SELECT user_id, sku, out_business_no, code, info, message_id, time FROM v WHERE suffix = '${t}'`,
  );
  const r = rs.map((x) => x.rejection);
  await sql(
    tx,
    `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
       AS v(suffix, user_id, sku, out_business_no, code, info, message_id, time)), ${inserts}
     SELECT 1`,
    [rs.map((x) => x.suffix), r.map((x) => x.userId), r.map((x) => x.sku), r.map((x) => x.outBusinessNo), r.map((x) => x.code), r.map((x) => x.info), r.map((x) => x.messageId), r.map((x) => x.time)],
  );
}

/** One credit of a group's: its order on its split table, today and this month. */
export type Credit = Readonly<{ suffix: string; order: RechargeOrder; day: string; month: string }>;

/**
 * `insertOrderAndCredit` for a group's credits in one statement: the account upserts are the main
 * query (run first, in the group's order), the orders (one insert per split table) and the day and
 * month rows come after, under those locks.
 */
export async function insertOrdersAndCredit(tx: Tx, suffixes: readonly string[], cs: readonly Credit[]): Promise<void> {
  if (!cs.length) return;
  const orders = ctePerSuffix(
    'o',
    suffixes,
    (t) => `
      INSERT INTO raffle_activity_order_${t} (user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time,
        total_count, day_count, month_count, pay_type, pay_amount, state, out_business_no)
      SELECT user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time, total, day_n, month_n, pay_type, pay_amount, 'completed', out_business_no
      FROM v WHERE suffix = '${t}'`,
  );
  const o = cs.map((c) => c.order);
  await sql(
    tx,
    `WITH v AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::timestamptz[], $9::int[], $10::int[], $11::int[],
        $12::text[], $13::numeric[], $14::text[], $15::text[], $16::text[])
        AS v(suffix, user_id, sku, activity_id, activity_name, strategy_id, order_id, order_time, total, day_n, month_n, pay_type, pay_amount, out_business_no, day, month)
    ), ${orders}, d AS (
      UPDATE raffle_activity_account_day x SET day_count = x.day_count + v.day_n, day_count_surplus = x.day_count_surplus + v.day_n, update_time = now()
      FROM v WHERE x.user_id = v.user_id AND x.activity_id = v.activity_id AND x.day = v.day
    ), m AS (
      UPDATE raffle_activity_account_month x SET month_count = x.month_count + v.month_n, month_count_surplus = x.month_count_surplus + v.month_n, update_time = now()
      FROM v WHERE x.user_id = v.user_id AND x.activity_id = v.activity_id AND x.month = v.month
    )
    INSERT INTO raffle_activity_account AS a (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    SELECT user_id, activity_id, total, total, day_n, day_n, month_n, month_n FROM v
    ON CONFLICT (user_id, activity_id) DO UPDATE SET
      total_count = a.total_count + excluded.total_count, total_count_surplus = a.total_count_surplus + excluded.total_count,
      day_count = a.day_count + excluded.day_count, day_count_surplus = a.day_count_surplus + excluded.day_count,
      month_count = a.month_count + excluded.month_count, month_count_surplus = a.month_count_surplus + excluded.month_count,
      update_time = now()`,
    [
      cs.map((c) => c.suffix),
      o.map((x) => x.userId),
      o.map((x) => x.sku),
      o.map((x) => x.activityId),
      o.map((x) => x.activityName),
      o.map((x) => x.strategyId),
      o.map((x) => x.orderId),
      o.map((x) => x.orderTime),
      o.map((x) => x.totalCount),
      o.map((x) => x.dayCount),
      o.map((x) => x.monthCount),
      o.map((x) => x.payType),
      o.map((x) => x.payAmount),
      o.map((x) => x.outBusinessNo),
      cs.map((c) => c.day),
      cs.map((c) => c.month),
    ],
  );
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
