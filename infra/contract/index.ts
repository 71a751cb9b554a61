import { z } from 'zod';
import { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, QUEUES, TOPICS, type InputQueue, type Topic } from '../topology';
import { EVENT_DATA, envelopeOf } from './events';
import { RESULT_CODES, CancelReply, HistoryReply, PartakeReply, QueryReply, UseReply } from './replies';
import { AccountPayload, BehaviorPayload, HistoryPayload, OrderPayload, RechargePayload, ReplayPayload, StockZeroPayload } from './requests';

export * from './fields';
export * from './requests';
export * from './replies';
export * from './events';

/** How a queue answers: `required` = request/reply (no replyTo is a dead letter); `optional` = only if replyTo is set. */
export type ReplyMode = 'none' | 'optional' | 'required';

export type QueueSpec = Readonly<{
  key: keyof typeof QUEUES;
  queue: InputQueue;
  summary: string;
  payload: z.ZodType;
  reply: ReplyMode;
  replySchema?: z.ZodType;
  /** Events this queue's messages can cause. */
  emits: readonly Topic[];
  /** Routing keys of `activity.events` bound to this queue. */
  boundTo?: readonly Topic[];
}>;

/** Every input queue of contract §5: the single source the workers, the client and the generated documents read. */
export const QUEUE_SPECS: readonly QueueSpec[] = [
  {
    key: 'recharge',
    queue: QUEUES.recharge,
    summary: "A recharge order: the account gets the SKU's total/day/month counts",
    payload: RechargePayload,
    reply: 'none',
    emits: [TOPICS.rechargeCompleted, TOPICS.rechargeRejected, TOPICS.skuStockZero],
  },
  {
    key: 'behavior',
    queue: QUEUES.behavior,
    summary: 'One rebate order per open rebate of that behavior, each recharging its SKU; once per behavior + outBusinessNo',
    payload: BehaviorPayload,
    reply: 'none',
    emits: [TOPICS.rechargeCompleted, TOPICS.rechargeRejected, TOPICS.skuStockZero],
  },
  {
    key: 'partake',
    queue: QUEUES.partake,
    summary: 'Spend one chance: deducts total, month and day and creates a raffle order (or returns the open one)',
    payload: AccountPayload,
    reply: 'required',
    replySchema: PartakeReply,
    emits: [TOPICS.partakeCreated],
  },
  { key: 'accountQuery', queue: QUEUES.accountQuery, summary: "The account's counts as of now", payload: AccountPayload, reply: 'required', replySchema: QueryReply, emits: [] },
  {
    key: 'accountHistory',
    queue: QUEUES.accountHistory,
    summary: "The user's recharge orders and raffle orders for the activity, newest first",
    payload: HistoryPayload,
    reply: 'required',
    replySchema: HistoryReply,
    emits: [],
  },
  { key: 'raffleOrderUsed', queue: QUEUES.raffleOrderUsed, summary: 'Raffle order create → used, once', payload: OrderPayload, reply: 'optional', replySchema: UseReply, emits: [] },
  {
    key: 'raffleOrderCancel',
    queue: QUEUES.raffleOrderCancel,
    summary: 'Raffle order create → cancel with its refund, once',
    payload: OrderPayload,
    reply: 'optional',
    replySchema: CancelReply,
    emits: [TOPICS.raffleOrderCancelled],
  },
  {
    key: 'stockZero',
    queue: QUEUES.stockZero,
    summary: "The SKU's database surplus set to 0, its pending stock updates dropped",
    payload: StockZeroPayload,
    reply: 'none',
    emits: [],
    boundTo: [TOPICS.skuStockZero],
  },
  { key: 'taskReplay', queue: QUEUES.taskReplay, summary: 'Outbox tasks re-queued for publishing', payload: ReplayPayload, reply: 'none', emits: [] },
];

export type EventSpec = Readonly<{ key: keyof typeof TOPICS; topic: Topic; summary: string; data: z.ZodType }>;

const EVENT_SUMMARIES: Record<Topic, string> = {
  [TOPICS.rechargeCompleted]: 'A recharge order was credited',
  [TOPICS.rechargeRejected]: 'A recharge was refused (activity not open, out of its dates, SKU unknown or sold out); a duplicate emits nothing',
  [TOPICS.partakeCreated]: 'A raffle order (entry ticket) was created',
  [TOPICS.raffleOrderCancelled]: 'An unused raffle order was cancelled (by its TTL or on request) and its chance refunded',
  [TOPICS.skuStockZero]: "A SKU's last unit was sold",
};

export const EVENT_SPECS: readonly EventSpec[] = (Object.entries(TOPICS) as Array<[keyof typeof TOPICS, Topic]>).map(([key, topic]) => ({
  key,
  topic,
  summary: EVENT_SUMMARIES[topic],
  data: EVENT_DATA[topic],
}));

export { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, RESULT_CODES };

/**
 * An inbound body: the bare payload or the envelope `{id, timestamp, data}` (contract §5). A body
 * is an envelope when `data` is an object and `id` or `timestamp` is present.
 */
export const inboundBody = <P extends z.ZodType>(title: string, payload: P) =>
  z
    .union([
      payload,
      z
        .object({
          id: z.string().optional().meta({ description: 'the message id (else the AMQP messageId)' }),
          timestamp: z.number().optional().meta({ description: 'epoch milliseconds' }),
          data: payload,
        })
        .meta({ title: `${title}Envelope`, anyOf: [{ required: ['id'] }, { required: ['timestamp'] }] }),
    ])
    .meta({ title });

export const eventBody = (spec: EventSpec) => envelopeOf(`${spec.key[0]!.toUpperCase()}${spec.key.slice(1)}Event`, spec.data);
