import { periodOf, type Period } from './calendar';
import type { DomainEvent } from './events';

/** The entry ticket's life (contract §6 Partake, Expiry): `create` → `used` by the raffle, or → `cancel` with a refund. */

export type RaffleOrderState = 'create' | 'used' | 'cancel';

export type RaffleOrder = Readonly<{
  orderId: string;
  userId: string;
  activityId: number;
  activityName: string;
  strategyId: number;
  orderTime: Date;
  orderState: RaffleOrderState;
}>;

export type OrderRefusal = Readonly<{ ok: false; code: 'ERR_BIZ_009' | 'ERR_BIZ_010'; info: string }>;

/** Why an order cannot leave `create` (be used or cancelled); `undefined` state = no such order. */
export function refuseChange(state: RaffleOrderState | undefined): OrderRefusal | undefined {
  switch (state) {
    case undefined:
      return { ok: false, code: 'ERR_BIZ_010', info: 'unknown raffle order' };
    case 'create':
      return undefined;
    case 'used':
      return { ok: false, code: 'ERR_BIZ_009', info: 'raffle order already used' };
    case 'cancel':
      return { ok: false, code: 'ERR_BIZ_009', info: 'raffle order was cancelled' };
    default: {
      const _exhaustive: never = state;
      throw new Error(`unknown raffle order state ${String(_exhaustive)}`);
    }
  }
}

/**
 * A use or cancel delivered again after it applied (its worker died between commit and reply): the
 * order left `create` for the state this request asks, by this request's message id. It is answered
 * as the first delivery was, not refused. Without a message id nothing can be recognised.
 */
export function sameChangeAgain(state: RaffleOrderState | undefined, changedBy: string | null | undefined, requestId: string | undefined, wanted: 'used' | 'cancel'): boolean {
  return requestId !== undefined && state === wanted && changedBy === requestId;
}

/** `partake.created`; its id is the order's, so the event cannot be written twice. */
export const partakeCreatedEvent = (o: RaffleOrder): DomainEvent => ({
  topic: 'partake.created',
  userId: o.userId,
  messageId: `partake.created:${o.orderId}`,
  data: { orderId: o.orderId, userId: o.userId, activityId: o.activityId, strategyId: o.strategyId, orderTime: o.orderTime.toISOString() },
});

/** One chance back: always the total; the day and month only when the order was made in the current ones. */
export type Refund = Readonly<{ total: 1; day: 0 | 1; month: 0 | 1 }>;

export type CancelDecision = Readonly<{ kind: 'refused'; refusal: OrderRefusal }> | Readonly<{ kind: 'cancel'; order: RaffleOrder; refund: Refund; period: Period; events: readonly [DomainEvent] }>;

/**
 * Cancelling an unused order (by its activity's TTL or on request) refunds it in the transaction that
 * cancels it. Periods are compared in the activity time zone: an order of yesterday gives back no day.
 */
export function decideCancel(order: RaffleOrder | undefined, now: Date, timeZone: string): CancelDecision {
  const refusal = refuseChange(order?.orderState);
  if (refusal || !order) return { kind: 'refused', refusal: refusal ?? { ok: false, code: 'ERR_BIZ_010', info: 'unknown raffle order' } };
  const made = periodOf(order.orderTime, timeZone);
  const period = periodOf(now, timeZone);
  const refund: Refund = { total: 1, day: made.day === period.day ? 1 : 0, month: made.month === period.month ? 1 : 0 };
  const event: DomainEvent = {
    topic: 'raffle-order.cancelled',
    userId: order.userId,
    data: { orderId: order.orderId, userId: order.userId, activityId: order.activityId, refund },
  };
  return { kind: 'cancel', order: { ...order, orderState: 'cancel' }, refund, period, events: [event] };
}

/** An unused order made at or before this instant has reached its activity's TTL. */
export const expiryCutoff = (ttlSeconds: number, now: Date): Date => new Date(now.getTime() - ttlSeconds * 1_000);
