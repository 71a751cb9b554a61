import type { ConsumeMessage } from 'amqplib';
import { field, invalid, readBody } from '../../infra/envelope';
import { QUEUES } from '../../infra/topology';

/** Queues of contract §5 served by the partake worker. */
export const PARTAKE_QUEUE = QUEUES.partake;
export const ACCOUNT_QUERY_QUEUE = QUEUES.accountQuery;
export const ACCOUNT_HISTORY_QUEUE = QUEUES.accountHistory;
export const RAFFLE_ORDER_USED_QUEUE = QUEUES.raffleOrderUsed;
export const RAFFLE_ORDER_CANCEL_QUEUE = QUEUES.raffleOrderCancel;

/** `activity.partake` and `activity.account.query`. */
export type AccountRequest = Readonly<{ userId: string; activityId: number }>;
/** `activity.raffle-order.used` and `activity.raffle-order.cancel`. */
export type OrderRequest = Readonly<{ userId: string; orderId: string }>;
/** `activity.account.history`: `before` exclusive (none: from the newest). */
export type HistoryRequest = Readonly<{ userId: string; activityId: number; limit: number; before?: Date }>;

export const HISTORY_LIMIT = { default: 20, max: 100 } as const;

/** Throws a PermanentError naming the problem (the handler replies `0002` or dead-letters). */
export function parseAccountRequest(msg: ConsumeMessage): AccountRequest {
  const { data } = readBody(msg);
  return { userId: field.userId(data), activityId: field.id(data, 'activityId') };
}

export function parseOrderRequest(msg: ConsumeMessage): OrderRequest {
  const { data } = readBody(msg);
  return { userId: field.userId(data), orderId: field.string(data, 'orderId', 32) };
}

/** `limit` a whole number 1..100 (default 20); `before` epoch milliseconds (an ISO 8601 date-time is taken too). */
export function parseHistoryRequest(msg: ConsumeMessage): HistoryRequest {
  const { data } = readBody(msg);
  const userId = field.userId(data);
  const activityId = field.id(data, 'activityId');
  let limit: number = HISTORY_LIMIT.default;
  if (data.limit !== undefined && data.limit !== null) {
    if (typeof data.limit !== 'number' || !Number.isInteger(data.limit) || data.limit < 1 || data.limit > HISTORY_LIMIT.max) {
      throw invalid(`limit must be a whole number from 1 to ${HISTORY_LIMIT.max}`);
    }
    limit = data.limit;
  }
  if (data.before === undefined || data.before === null) return { userId, activityId, limit };
  const before = typeof data.before === 'number' ? new Date(data.before) : typeof data.before === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(data.before) ? new Date(data.before) : undefined;
  if (!before || Number.isNaN(before.getTime())) throw invalid('before must be an orderTime in epoch milliseconds');
  return { userId, activityId, limit, before };
}
