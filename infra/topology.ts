import type { Channel } from 'amqplib';

/** Every name of contract §5 in one place; workers import their queue from here. */
export const QUEUES = {
  recharge: 'activity.recharge',
  behavior: 'activity.behavior',
  partake: 'activity.partake',
  accountQuery: 'activity.account.query',
  accountHistory: 'activity.account.history',
  raffleOrderUsed: 'activity.raffle-order.used',
  raffleOrderCancel: 'activity.raffle-order.cancel',
  stockZero: 'activity.sku.stock-zero',
  taskReplay: 'activity.task.replay',
} as const;
export type InputQueue = (typeof QUEUES)[keyof typeof QUEUES];
export const INPUT_QUEUES: readonly InputQueue[] = Object.values(QUEUES);

export const DEAD_LETTER_QUEUE = 'activity.dead-letter';
export const EVENTS_EXCHANGE = 'activity.events';

/** Outbound routing keys (= the message `type`). */
export const TOPICS = {
  rechargeCompleted: 'recharge.completed',
  rechargeRejected: 'recharge.rejected',
  partakeCreated: 'partake.created',
  raffleOrderCancelled: 'raffle-order.cancelled',
  skuStockZero: 'sku.stock_zero',
} as const;
export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** Input queues bound to the events exchange, with their routing key. */
const BINDINGS: ReadonlyArray<readonly [InputQueue, Topic]> = [[QUEUES.stockZero, TOPICS.skuStockZero]];

/**
 * Declares the whole topology; safe to repeat (every declaration is idempotent). Input queues are
 * durable quorum queues: the broker counts deliveries and dead-letters a message past the limit,
 * so a message that crashes its worker cannot loop for ever.
 */
export async function declareTopology(ch: Channel, deliveryLimit: number): Promise<void> {
  await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
  await ch.assertQueue(DEAD_LETTER_QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  for (const q of INPUT_QUEUES) {
    await ch.assertQueue(q, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': deliveryLimit,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': DEAD_LETTER_QUEUE,
      },
    });
  }
  for (const [q, key] of BINDINGS) await ch.bindQueue(q, EVENTS_EXCHANGE, key);
}
