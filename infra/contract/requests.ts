import { createHash } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { PAY_TYPES, type RechargeRequest } from '../../domain/recharge';
import { invalid, readBody } from '../envelope';
import { epochMs, identifier, reasonOf, text, wholeId } from './fields';

/** Inbound payloads of contract §5, one schema per queue. Unknown fields are ignored (tolerant reader). */

export const RechargePayload = z
  .object({
    userId: identifier('the user'),
    sku: wholeId('the SKU to recharge'),
    outBusinessNo: identifier("the caller's business number: one (userId, outBusinessNo) is credited at most once"),
    payType: z
      .enum(PAY_TYPES, { error: `must be one of ${PAY_TYPES.join(', ')}` })
      .nullish()
      .meta({ description: 'default free' }),
    payAmount: z
      .string({ error: 'must be a decimal string like "12.50", 0 or more' })
      .regex(/^\d{1,10}(\.\d{1,2})?$/, 'must be a decimal string like "12.50", 0 or more')
      .nullish()
      .meta({ description: 'decimal string, default "0"' }),
  })
  .meta({ title: 'RechargeRequest' });

export const BehaviorPayload = z
  .object({
    userId: identifier('the user'),
    behavior: identifier('the behavior type, e.g. sign'),
    outBusinessNo: identifier('e.g. the day of a sign-in: the same behavior + outBusinessNo grants once'),
  })
  .meta({ title: 'BehaviorRequest' });

/** `activity.partake` and `activity.account.query`. */
export const AccountPayload = z.object({ userId: identifier('the user'), activityId: wholeId('the activity') }).meta({ title: 'AccountRequest' });

/** `activity.raffle-order.used` and `activity.raffle-order.cancel`. */
export const OrderPayload = z.object({ userId: identifier('the user'), orderId: text(32, 'the raffle order id') }).meta({ title: 'RaffleOrderRequest' });

export const HISTORY_LIMIT = { min: 1, max: 100, default: 20 } as const;
export const HistoryPayload = z
  .object({
    userId: identifier('the user'),
    activityId: wholeId('the activity'),
    limit: z
      .int({ error: `must be a whole number from ${HISTORY_LIMIT.min} to ${HISTORY_LIMIT.max}` })
      .min(HISTORY_LIMIT.min, { error: `must be a whole number from ${HISTORY_LIMIT.min} to ${HISTORY_LIMIT.max}` })
      .max(HISTORY_LIMIT.max, { error: `must be a whole number from ${HISTORY_LIMIT.min} to ${HISTORY_LIMIT.max}` })
      .optional()
      .meta({ description: `entries per list at most, default ${HISTORY_LIMIT.default}` }),
    before: epochMs('only orders older than this orderTime').optional(),
  })
  .meta({ title: 'HistoryRequest' });

export const StockZeroPayload = z.object({ sku: wholeId('the SKU whose stock ran out') }).meta({ title: 'StockZero' });

export const REPLAY_MAX_IDS = 1_000;
const REPLAY_ID_ERROR = 'must be a positive whole number or a non-empty string of up to 128 characters';
export const ReplayPayload = z
  .object({
    taskIds: z
      .array(z.union([z.int().positive(), z.string().min(1).max(128)], { error: REPLAY_ID_ERROR }), { error: 'must be a non-empty array' })
      .min(1, { error: 'must be a non-empty array' })
      .max(REPLAY_MAX_IDS, { error: `has over ${REPLAY_MAX_IDS} entries` })
      .optional()
      .meta({ description: 'message ids, SHARD:ID as `tasks list` prints, or task ids' }),
    state: z.enum(['fail', 'dead'], { error: 'must be "fail" or "dead"' }).optional(),
  })
  .refine((o) => (o.taskIds === undefined) !== (o.state === undefined), { error: 'give exactly one of taskIds or state', abort: true })
  .meta({ title: 'ReplayRequest', oneOf: [{ required: ['taskIds'] }, { required: ['state'] }] });

export type AccountRequest = Readonly<z.output<typeof AccountPayload>>;
/** A partake: `requestId` is the request's message id (envelope `id`, else AMQP `messageId`), when it has one. */
export type PartakeRequest = AccountRequest & Readonly<{ requestId?: string }>;
/** A use or cancel: `requestId` as for partake, so a redelivery after it applied is recognised. */
export type OrderRequest = Readonly<z.output<typeof OrderPayload>> & Readonly<{ requestId?: string }>;
export type BehaviorRequest = Readonly<z.output<typeof BehaviorPayload>>;
/** `limit` resolved to its default. */
export type HistoryRequest = Readonly<{ userId: string; activityId: number; limit: number; before?: number }>;
export type ReplayRequest = Readonly<{ ids: Array<string | number> } | { state: 'fail' | 'dead' }>;

/** `data` checked by `schema`; a PermanentError names the field (the handler replies `0002` or dead-letters). */
export function checkPayload<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw invalid(reasonOf(r.error));
  return r.data;
}

export function parseRechargeRequest(msg: ConsumeMessage): RechargeRequest {
  const { userId, sku, outBusinessNo, payType, payAmount } = checkPayload(RechargePayload, readBody(msg).data);
  return { userId, sku, outBusinessNo, payType: payType ?? 'free', payAmount: payAmount ?? '0' };
}

export function parseBehaviorRequest(msg: ConsumeMessage): BehaviorRequest {
  const { userId, behavior, outBusinessNo } = checkPayload(BehaviorPayload, readBody(msg).data);
  return { userId, behavior, outBusinessNo };
}

export function parseAccountRequest(msg: ConsumeMessage): AccountRequest {
  const { userId, activityId } = checkPayload(AccountPayload, readBody(msg).data);
  return { userId, activityId };
}

/** A message id longer than the `request_id` column is kept as its SHA-256, so any id still dedupes. */
export const REQUEST_ID_MAX = 128;

/** The request's message id as stored (`request_id`, `changed_by`): at most REQUEST_ID_MAX characters. */
const requestIdOf = (id: string | undefined): { requestId?: string } => (id ? { requestId: id.length <= REQUEST_ID_MAX ? id : `sha256:${createHash('sha256').update(id).digest('hex')}` } : {});

export function parsePartakeRequest(msg: ConsumeMessage): PartakeRequest {
  const body = readBody(msg);
  const { userId, activityId } = checkPayload(AccountPayload, body.data);
  return { userId, activityId, ...requestIdOf(body.messageId) };
}

/** `activity.raffle-order.used` and `activity.raffle-order.cancel`. */
export function parseOrderRequest(msg: ConsumeMessage): OrderRequest {
  const body = readBody(msg);
  const { userId, orderId } = checkPayload(OrderPayload, body.data);
  return { userId, orderId, ...requestIdOf(body.messageId) };
}
export const parseUseRequest = parseOrderRequest;
export const parseCancelRequest = parseOrderRequest;

export function parseHistoryRequest(msg: ConsumeMessage): HistoryRequest {
  const { userId, activityId, limit, before } = checkPayload(HistoryPayload, readBody(msg).data);
  return { userId, activityId, limit: limit ?? HISTORY_LIMIT.default, ...(before === undefined ? {} : { before }) };
}

export function parseStockZeroRequest(msg: ConsumeMessage): { messageId: string | undefined; sku: number } {
  const { messageId, data } = readBody(msg);
  return { messageId, sku: checkPayload(StockZeroPayload, data).sku };
}

export function parseReplayRequest(msg: ConsumeMessage): ReplayRequest {
  const o = checkPayload(ReplayPayload, readBody(msg).data);
  return o.state ? { state: o.state } : { ids: o.taskIds! };
}
