import { type Db, sql, transaction } from '../../infra/db';
import { enqueue, type EnqueuedTask } from '../../infra/outbox';
import type { Databases } from '../../infra/shards';
import type { Topic } from '../../infra/topology';

/**
 * Test builders: rows written straight into a test world's databases, so that a test states only
 * what matters to it (`seedAccount(dbs, 'alice', OPEN, { totalSurplus: 0 })`). Every row goes to the
 * user's shard and split table as the router places it.
 */

type Users = Pick<Databases, 'forUser'>;

export type ActivitySeed = Readonly<{ activityId: number; name?: string; begin?: string; end?: string; strategyId?: number; state?: 'create' | 'open' | 'close' }>;

/** A `raffle_activity` row in the global database: open from 2020 to 2099 unless told otherwise. */
export async function seedActivity(global: Db, a: ActivitySeed): Promise<void> {
  await sql(
    global,
    `INSERT INTO raffle_activity (activity_id, activity_name, begin_date_time, end_date_time, strategy_id, state)
    VALUES ($1, $2, $3, $4, $5, $6)`,
    [a.activityId, a.name ?? `activity ${a.activityId}`, a.begin ?? '2020-01-01T00:00:00Z', a.end ?? '2099-01-01T00:00:00Z', a.strategyId ?? 100006, a.state ?? 'open'],
  );
}

export type AccountSeed = Readonly<{ total?: number; totalSurplus?: number; day?: number; daySurplus?: number; month?: number; monthSurplus?: number }>;

/** An account as one recharge of 10 / 3 / 6 leaves it; each count and surplus can be set. */
export async function seedAccount(dbs: Users, userId: string, activityId: number, a: AccountSeed = {}): Promise<void> {
  const total = a.total ?? 10;
  const day = a.day ?? 3;
  const month = a.month ?? 6;
  await sql(
    dbs.forUser(userId).ds,
    `INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [userId, activityId, total, a.totalSurplus ?? total, day, a.daySurplus ?? day, month, a.monthSurplus ?? month],
  );
}

/** The user's row of one day (`YYYY-MM-DD`). */
export async function seedDayRow(dbs: Users, userId: string, activityId: number, day: string, count: number, surplus: number): Promise<void> {
  await sql(dbs.forUser(userId).ds, 'INSERT INTO raffle_activity_account_day (user_id, activity_id, day, day_count, day_count_surplus) VALUES ($1, $2, $3, $4, $5)', [
    userId,
    activityId,
    day,
    count,
    surplus,
  ]);
}

/** The user's row of one month (`YYYY-MM`). */
export async function seedMonthRow(dbs: Users, userId: string, activityId: number, month: string, count: number, surplus: number): Promise<void> {
  await sql(dbs.forUser(userId).ds, 'INSERT INTO raffle_activity_account_month (user_id, activity_id, month, month_count, month_count_surplus) VALUES ($1, $2, $3, $4, $5)', [
    userId,
    activityId,
    month,
    count,
    surplus,
  ]);
}

export type RaffleOrderSeed = Readonly<{ userId: string; orderId: string; activityId: number; orderTime: Date; state?: 'create' | 'used' | 'cancel'; name?: string; strategyId?: number }>;

/** A raffle order (entry ticket) in the user's split table; unused unless told otherwise. */
export async function seedRaffleOrder(dbs: Users, o: RaffleOrderSeed): Promise<void> {
  const { ds, suffix } = dbs.forUser(o.userId);
  await sql(ds, `INSERT INTO user_raffle_order_${suffix} (order_id, user_id, activity_id, activity_name, strategy_id, order_time, order_state) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    o.orderId,
    o.userId,
    o.activityId,
    o.name ?? 'x',
    o.strategyId ?? 100006,
    o.orderTime,
    o.state ?? 'create',
  ]);
}

export type SeededTask = EnqueuedTask & Readonly<{ shard: number; ds: Db }>;

/** One outbox task for `userId`, enqueued as a handler would (infra/outbox.ts), due now. */
export async function seedTask(dbs: Users, userId: string, topic: Topic | string, data: Record<string, unknown> = { userId }): Promise<SeededTask> {
  const u = dbs.forUser(userId);
  const [t] = await transaction(u.ds, (tx) => enqueue(tx, [{ topic: topic as Topic, userId, data }], new Date()));
  return { ...t!, shard: u.shard, ds: u.ds };
}

/** The state of a task as the tests look at it. */
export async function taskState(t: Readonly<{ ds: Db; id: string }>): Promise<string | undefined> {
  return (await sql<{ state: string }>(t.ds, 'SELECT state FROM task WHERE id = $1', [t.id])).rows[0]?.state;
}
