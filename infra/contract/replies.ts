import { z } from 'zod';
import { PAY_TYPES } from '../../domain/recharge';
import { count, identifier, isoTime, text, wholeId } from './fields';

/** Result codes of contract §5.1, each with when it is answered. */
export const RESULT_CODES = {
  '0000': 'success',
  '0001': 'unexpected failure (nothing was changed)',
  '0002': 'illegal parameter: unparsable JSON, missing or ill-typed field; a userId, outBusinessNo or behavior that is empty, over 128 characters or holds a control character',
  ERR_BIZ_003: 'activity not open',
  ERR_BIZ_004: "now is outside the activity's dates",
  ERR_BIZ_005: 'SKU stock exhausted',
  ERR_BIZ_006: 'total quota exhausted (or no account)',
  ERR_BIZ_007: 'month quota exhausted',
  ERR_BIZ_008: 'day quota exhausted',
  ERR_BIZ_009: 'raffle order already used or cancelled',
  ERR_BIZ_010: 'unknown activity, SKU or order',
} as const;
export type ResultCode = keyof typeof RESULT_CODES;
export type FailureCode = Exclude<ResultCode, '0000'>;

/** A code as a JSON Schema `oneOf` of consts, each with its meaning. */
export const codeSchema = <C extends ResultCode>(codes: readonly C[]) => z.enum(codes as [C, ...C[]]).meta({ oneOf: codes.map((c) => ({ const: c, description: RESULT_CODES[c] })) });

export const RaffleOrderData = z
  .strictObject({
    orderId: text(32, 'the raffle order id'),
    userId: identifier('the user'),
    activityId: wholeId('the activity'),
    activityName: z.string(),
    strategyId: wholeId('the raffle strategy'),
    orderTime: isoTime('when the order was made'),
    orderState: z.enum(['create', 'used', 'cancel']),
  })
  .meta({ title: 'RaffleOrder' });

export const QuotaData = z
  .strictObject({
    totalCount: count('chances granted in total'),
    totalCountSurplus: count('chances left in total'),
    dayCount: count("today's allowance"),
    dayCountSurplus: count('chances left today'),
    monthCount: count("this month's allowance"),
    monthCountSurplus: count('chances left this month'),
  })
  .meta({ title: 'AccountQuota' });

export const Refund = z
  .strictObject({ total: z.union([z.literal(0), z.literal(1)]), day: z.union([z.literal(0), z.literal(1)]), month: z.union([z.literal(0), z.literal(1)]) })
  .meta({ title: 'Refund', description: 'chances given back to total, today and this month (0 or 1 each)' });

/** A cancelled raffle order; `refund` where the worker reports it. */
export const CancelData = RaffleOrderData.extend({ refund: Refund.optional() }).meta({ title: 'CancelledRaffleOrder' });

export const HistoryData = z
  .strictObject({
    recharges: z.array(
      z.strictObject({
        orderId: text(32, 'the recharge order id'),
        sku: wholeId('the SKU'),
        outBusinessNo: identifier("the caller's business number"),
        totalCount: count('chances granted in total'),
        dayCount: count('per-day allowance granted'),
        monthCount: count('per-month allowance granted'),
        payType: z.enum(PAY_TYPES),
        payAmount: z.string().regex(/^\d+(\.\d+)?$/),
        orderTime: isoTime('when the order was made'),
      }),
    ),
    raffleOrders: z.array(z.strictObject({ orderId: text(32, 'the raffle order id'), orderState: z.enum(['create', 'used', 'cancel']), orderTime: isoTime('when the order was made') })),
  })
  .meta({ title: 'AccountHistory', description: 'newest first, each list at most `limit` long' });

/** `{code: "0000", info, data}` or `{code, info}` with one of `codes`. */
export function replySchema<D extends z.ZodType, C extends FailureCode>(title: string, data: D, codes: readonly C[]) {
  return z
    .union([z.strictObject({ code: z.literal('0000'), info: z.string(), data }), z.strictObject({ code: codeSchema(codes), info: z.string().meta({ description: 'the reason, for people' }) })])
    .meta({ title });
}

const COMMON = ['0001', '0002'] as const;
export const REPLY_CODES = {
  partake: [...COMMON, 'ERR_BIZ_003', 'ERR_BIZ_004', 'ERR_BIZ_006', 'ERR_BIZ_007', 'ERR_BIZ_008', 'ERR_BIZ_010'],
  query: COMMON,
  use: [...COMMON, 'ERR_BIZ_009', 'ERR_BIZ_010'],
  cancel: [...COMMON, 'ERR_BIZ_009', 'ERR_BIZ_010'],
  history: COMMON,
} as const satisfies Record<string, readonly FailureCode[]>;

export const PartakeReply = replySchema('PartakeReply', RaffleOrderData, REPLY_CODES.partake);
export const QueryReply = replySchema('AccountQueryReply', QuotaData, REPLY_CODES.query);
export const UseReply = replySchema('RaffleOrderUsedReply', RaffleOrderData, REPLY_CODES.use);
export const CancelReply = replySchema('RaffleOrderCancelReply', CancelData, REPLY_CODES.cancel);
export const HistoryReply = replySchema('AccountHistoryReply', HistoryData, REPLY_CODES.history);

export type RaffleOrder = z.output<typeof RaffleOrderData>;
export type Quota = z.output<typeof QuotaData>;
export type History = z.output<typeof HistoryData>;
export type CancelledOrder = z.output<typeof CancelData>;
/** A reply: success with `data`, or one of `C` with the reason. */
export type Reply<D, C extends FailureCode> = Readonly<{ code: '0000'; info: string; data: D }> | Readonly<{ code: C; info: string }>;
