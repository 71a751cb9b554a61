import { periodOf } from '../../domain/calendar';
import { sql } from '../../infra/db';
import { QUEUES } from '../../infra/topology';
import { waitFor } from '../support/client';
import { account, rows, type World } from './recharge-world';

/** Helpers of the raffle-order life tests (cancel, expiry, history, ids): callers' requests and the rows they leave. */

export const rpc = (w: World, queue: string, payload: unknown, timeoutMs = 15_000) => w.client.rpc(queue, payload, { timeoutMs }).then((r) => r.body);
export const partake = (w: World, userId: string, activityId: number) => rpc(w, QUEUES.partake, { userId, activityId });
export const use = (w: World, userId: string, orderId: string) => rpc(w, QUEUES.raffleOrderUsed, { userId, orderId });
export const cancel = (w: World, userId: string, orderId: string) => rpc(w, QUEUES.raffleOrderCancel, { userId, orderId });
export const history = (w: World, payload: Record<string, unknown>) => rpc(w, QUEUES.accountHistory, payload);

/** Recharges through the pipeline and waits for the credit. */
export async function credited(w: World, userId: string, sku: number, outBusinessNo: string): Promise<void> {
  await w.client.publish(QUEUES.recharge, { userId, sku, outBusinessNo });
  await w.client.waitEvent((e) => e.key === 'recharge.completed' && e.data?.userId === userId && e.data?.outBusinessNo === outBusinessNo, 15_000, `credit of ${userId}`);
}

/** The account, today's and this month's rows of one user, read on the routed shard. */
export async function quotaRows(w: World, userId: string, activityId: number) {
  const { ds } = w.dbs.forUser(userId);
  const p = periodOf(new Date(), w.env.config.timeZone);
  const day = (await sql<any>(ds, 'SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = $1 AND activity_id = $2 AND day = $3', [userId, activityId, p.day])).rows[0];
  const month = (await sql<any>(ds, 'SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = $1 AND activity_id = $2 AND month = $3', [userId, activityId, p.month]))
    .rows[0];
  return { account: await account(w, userId, activityId), day, month };
}

/** The user's raffle orders over every shard and split table (so a wrongly routed row would show). */
export const raffleOrders = (w: World, userId: string) => rows(w, 'user_raffle_order', 'user_id = $1', [userId]);

/** `raffle-order.cancelled` tasks of one order over every shard. */
export async function cancelTasks(w: World, orderId: string): Promise<any[]> {
  const out: any[] = [];
  for (const { ds } of w.dbs.shards) {
    out.push(...(await sql<any>(ds, `SELECT message_id, message FROM task WHERE topic = 'raffle-order.cancelled' AND message->'data'->>'orderId' = $1`, [orderId])).rows);
  }
  return out;
}

export async function stateOf(w: World, userId: string, orderId: string): Promise<string | undefined> {
  return (await raffleOrders(w, userId)).find((o) => o.order_id === orderId)?.order_state;
}

export { waitFor };
