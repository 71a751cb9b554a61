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
 * Where a message waits while the dependency it needs is out (docs/DESIGN.md "Partial failures"):
 * the consumer publishes it to the park exchange with its queue as routing key and acks it; the
 * park queue holds it for `PARK_MS`, then dead-letters it by that routing key, back into its queue.
 */
export const PARK_EXCHANGE = 'activity.park';
export const PARK_QUEUE = 'activity.park';

export type TopologySettings = Readonly<{ deliveryLimit: number; parkMs: number; quorumInitialGroupSize: number }>;

/**
 * Declares the whole topology; safe to repeat (every declaration is idempotent). Input queues are
 * durable quorum queues: the broker counts deliveries and dead-letters a message past the limit,
 * so a message that crashes its worker cannot loop for ever.
 */
export async function declareTopology(ch: Channel, t: TopologySettings): Promise<void> {
  const quorum = { 'x-queue-type': 'quorum', ...(t.quorumInitialGroupSize ? { 'x-quorum-initial-group-size': t.quorumInitialGroupSize } : {}) };
  await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
  await ch.assertExchange(PARK_EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(DEAD_LETTER_QUEUE, { durable: true, arguments: quorum });
  // At-least-once dead-lettering (needs reject-publish overflow): a parked message is never dropped on its way back.
  await ch.assertQueue(PARK_QUEUE, {
    durable: true,
    arguments: { ...quorum, 'x-message-ttl': t.parkMs, 'x-dead-letter-exchange': '', 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' },
  });
  for (const q of INPUT_QUEUES) await declareInputQueue(ch, q, t);
}

/** One input queue with its bindings (also used to bring back a queue deleted under a running consumer). */
export async function declareInputQueue(ch: Channel, q: string, t: TopologySettings): Promise<void> {
  await ch.assertQueue(q, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      ...(t.quorumInitialGroupSize ? { 'x-quorum-initial-group-size': t.quorumInitialGroupSize } : {}),
      'x-delivery-limit': t.deliveryLimit,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': DEAD_LETTER_QUEUE,
    },
  });
  await ch.bindQueue(PARK_QUEUE, PARK_EXCHANGE, q);
  for (const [bound, key] of BINDINGS) if (bound === q) await ch.bindQueue(q, EVENTS_EXCHANGE, key);
}
