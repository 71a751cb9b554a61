import { z } from 'zod';
import { TOPICS, type Topic } from '../topology';
import { codeSchema, Refund } from './replies';
import { count, identifier, isoTime, text, wholeId } from './fields';

/** Outbound events of contract §5: the `data` of each routing key. */

export const RechargeCompleted = z
  .strictObject({
    orderId: text(32, 'the recharge order id'),
    userId: identifier('the user'),
    sku: wholeId('the SKU'),
    activityId: wholeId('the activity'),
    totalCount: count('chances granted in total'),
    dayCount: count('per-day allowance granted'),
    monthCount: count('per-month allowance granted'),
    outBusinessNo: identifier("the caller's business number"),
  })
  .meta({ title: 'RechargeCompleted' });

export const RechargeRejected = z
  .strictObject({
    userId: identifier('the user'),
    sku: wholeId('the SKU'),
    outBusinessNo: identifier("the caller's business number"),
    code: codeSchema(['ERR_BIZ_003', 'ERR_BIZ_004', 'ERR_BIZ_005', 'ERR_BIZ_010']),
    info: z.string(),
  })
  .meta({ title: 'RechargeRejected' });

export const PartakeCreated = z
  .strictObject({
    orderId: text(32, 'the raffle order id'),
    userId: identifier('the user'),
    activityId: wholeId('the activity'),
    strategyId: wholeId('the raffle strategy'),
    orderTime: isoTime('when the order was made'),
  })
  .meta({ title: 'PartakeCreated' });

export const RaffleOrderCancelled = z
  .strictObject({ orderId: text(32, 'the raffle order id'), userId: identifier('the user'), activityId: wholeId('the activity'), refund: Refund })
  .meta({ title: 'RaffleOrderCancelled' });

export const SkuStockZero = z.strictObject({ sku: wholeId('the SKU whose stock ran out') }).meta({ title: 'SkuStockZero' });

export const EVENT_DATA = {
  [TOPICS.rechargeCompleted]: RechargeCompleted,
  [TOPICS.rechargeRejected]: RechargeRejected,
  [TOPICS.partakeCreated]: PartakeCreated,
  [TOPICS.raffleOrderCancelled]: RaffleOrderCancelled,
  [TOPICS.skuStockZero]: SkuStockZero,
} as const satisfies Record<Topic, z.ZodType>;

/** What goes on the wire: `id` = AMQP `messageId` = `task.message_id`, `timestamp` in epoch ms. */
export const envelopeOf = <D extends z.ZodType>(title: string, data: D) =>
  z
    .strictObject({
      id: z.string().min(1).meta({ description: 'the message id, equal to the AMQP messageId; deduplicate by it' }),
      timestamp: z.int().nonnegative().meta({ description: 'when the event was written (epoch milliseconds)' }),
      data,
    })
    .meta({ title });

export type EventData = { [K in Topic]: z.output<(typeof EVENT_DATA)[K]> };
export type Event<K extends Topic = Topic> = { [T in K]: Readonly<{ type: T; id: string; timestamp: number; data: EventData[T] }> }[K];
