import type { ConsumeMessage } from 'amqplib';
import { field, readBody } from '../../infra/envelope';
import { QUEUES } from '../../infra/topology';

/** Request/reply queues of contract §5 served by the partake worker. */
export const PARTAKE_QUEUE = QUEUES.partake;
export const ACCOUNT_QUERY_QUEUE = QUEUES.accountQuery;
export const RAFFLE_ORDER_USED_QUEUE = QUEUES.raffleOrderUsed;

/** `activity.partake` and `activity.account.query`. */
export type AccountRequest = Readonly<{ userId: string; activityId: number }>;
/** `activity.raffle-order.used`. */
export type UseRequest = Readonly<{ userId: string; orderId: string }>;

/** Throws a PermanentError naming the problem (the handler replies `0002` or dead-letters). */
export function parseAccountRequest(msg: ConsumeMessage): AccountRequest {
  const { data } = readBody(msg);
  return { userId: field.userId(data), activityId: field.id(data, 'activityId') };
}

export function parseUseRequest(msg: ConsumeMessage): UseRequest {
  const { data } = readBody(msg);
  return { userId: field.userId(data), orderId: field.string(data, 'orderId', 32) };
}
