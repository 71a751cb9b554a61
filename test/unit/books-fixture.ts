import { route } from '../../domain/router';
import type { History, Layout, Snapshot, TaskRow } from '../support/books/types';

/** An honest small run for the books checker's tests; each test doctors a fresh copy. */
export const LAYOUT: Layout = { shards: 2, tables: 4, timeZone: 'UTC' };
export const T = Date.parse('2026-06-01T10:00:00Z');
export const NOW = T + 60_000;
const ACT = 100301;

const at = (userId: string) => route(userId, LAYOUT.shards, LAYOUT.tables);
const place = (userId: string) => ({ shard: at(userId).shard, suffix: at(userId).suffix });

export function honest(): { h: History & { partakes: any[]; uses: any[]; recharges: any[]; events: any[] }; s: Snapshot } {
  const tasks: TaskRow[] = [];
  const events: Array<{ key: string; messageId: string; data: Record<string, any> }> = [];
  const emit = (topic: string, userId: string, data: Record<string, any>) => {
    const messageId = `${topic}:${data.orderId ?? data.outBusinessNo}`;
    tasks.push({ shard: at(userId).shard, id: String(tasks.length + 1), topic, message_id: messageId, state: 'completed', message: { id: messageId, data }, user_id: userId });
    events.push({ key: topic, messageId, data });
  };
  const order = (userId: string, no: string, sku: number, orderId: string) => {
    emit('recharge.completed', userId, { orderId, userId, sku, outBusinessNo: no });
    return {
      ...place(userId),
      user_id: userId,
      sku: String(sku),
      activity_id: String(ACT),
      order_id: orderId,
      order_time: new Date(T - 5_000),
      total_count: 1,
      day_count: 1,
      month_count: 1,
      out_business_no: no,
    };
  };
  const orders = [order('u1', 'r1', 9011, 'o1'), order('u2', 'r2', 9013, 'o2'), order('u3', 'r3', 9013, 'o3')];
  emit('recharge.rejected', 'u4', { userId: 'u4', sku: 9013, outBusinessNo: 'r4', code: 'ERR_BIZ_005' });
  const raffle = (userId: string, orderId: string, state: string) => {
    emit('partake.created', userId, { orderId, userId, activityId: ACT });
    return { ...place(userId), user_id: userId, activity_id: String(ACT), order_id: orderId, order_time: new Date(T + 20), order_state: state };
  };
  const account = (userId: string, surplus: number) => ({
    shard: at(userId).shard,
    user_id: userId,
    activity_id: String(ACT),
    total_count: 1,
    total_count_surplus: surplus,
    day_count: 1,
    day_count_surplus: surplus,
    month_count: 1,
    month_count_surplus: surplus,
  });
  const day = (userId: string) => ({ shard: at(userId).shard, user_id: userId, activity_id: String(ACT), day: '2026-06-01', day_count: 1, day_count_surplus: 0 });
  const month = (userId: string) => ({ shard: at(userId).shard, user_id: userId, activity_id: String(ACT), month: '2026-06', month_count: 1, month_count_surplus: 0 });
  const s: Snapshot = {
    orders,
    rejections: [{ ...place('u4'), user_id: 'u4', sku: '9013', out_business_no: 'r4', code: 'ERR_BIZ_005', message_id: 'recharge.rejected:r4', create_time: new Date(T - 4_000) }],
    raffle: [raffle('u1', 'p1', 'used'), raffle('u2', 'p2', 'create')],
    accounts: [account('u1', 0), account('u2', 0), account('u3', 1)],
    days: [day('u1'), day('u2')],
    months: [month('u1'), month('u2')],
    tasks,
    skus: [
      { sku: 9011, stock_count: -1, stock_count_surplus: -1 },
      { sku: 9013, stock_count: 2, stock_count_surplus: 0 },
    ],
    redisStock: new Map([[9013, 0]]),
  };
  const h = {
    catalog: {
      activities: [{ activityId: ACT, state: 'open', beginTime: '2020-01-01T00:00:00Z', endTime: '2099-01-01T00:00:00Z' }],
      skus: [
        { sku: 9011, activityId: ACT, stockCount: -1 },
        { sku: 9013, activityId: ACT, stockCount: 2 },
      ],
    },
    recharges: [
      { userId: 'u1', outBusinessNo: 'r1', sku: 9011 },
      { userId: 'u2', outBusinessNo: 'r2', sku: 9013 },
      { userId: 'u3', outBusinessNo: 'r3', sku: 9013 },
      { userId: 'u4', outBusinessNo: 'r4', sku: 9013 },
    ],
    partakes: [
      { userId: 'u1', activityId: ACT, replies: [{ code: '0000', orderId: 'p1' }], sentAt: T, okAt: T + 50 },
      { userId: 'u2', activityId: ACT, replies: [{ code: '0000', orderId: 'p2' }], sentAt: T, okAt: T + 50 },
    ],
    uses: [{ userId: 'u1', orderId: 'p1', replies: [{ code: '0000' }], attempts: 1 }],
    events,
    deadLetters: [],
    expectPartakes: 2,
  };
  return { h, s };
}
