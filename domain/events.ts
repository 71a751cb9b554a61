/**
 * The events the domain decides to emit (contract §5 outbound routing keys). The worker writes each
 * one to the outbox in the transaction of its cause; `messageId` is the event's id there.
 */
export type EventTopic = 'recharge.completed' | 'recharge.rejected' | 'partake.created' | 'raffle-order.cancelled' | 'sku.stock_zero';

export type DomainEvent = Readonly<{
  topic: EventTopic;
  /** Whose shard the event is written on. */
  userId: string;
  data: Record<string, unknown>;
  /** A deterministic id (writing the event twice is then a no-op); absent, the outbox gives it a fresh one. */
  messageId?: string;
}>;
