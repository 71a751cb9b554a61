import { activityRefusal } from './activity';
import { periodOf, type Period } from './calendar';
import type { Activity, CountPackage } from './catalog';
import type { DomainEvent } from './events';

/** Recharge decisions (contract §5 `activity.recharge`, §6 Recharge). Pure: time and ids come in. */

export const PAY_TYPES = ['cash', 'credit', 'coupon', 'free'] as const;
export type PayType = (typeof PAY_TYPES)[number];

export type RechargeRequest = Readonly<{
  userId: string;
  sku: number;
  outBusinessNo: string;
  payType: PayType;
  /** Decimal string, two decimals at most ("12.50"). */
  payAmount: string;
}>;

/** A SKU with its activity and count package resolved; `stockCount` -1 is unlimited. */
export type RechargeSku = Readonly<{ sku: number; stockCount: number; activity: Activity; counts: CountPackage }>;

export type RefusalCode = 'ERR_BIZ_003' | 'ERR_BIZ_004' | 'ERR_BIZ_005' | 'ERR_BIZ_010';
export type Refusal = Readonly<{ ok: false; code: RefusalCode; info: string }>;
export type Accepted = Readonly<{ ok: true; sku: RechargeSku }>;

/** Catalog checks before any stock is touched: SKU known, activity open, now within [begin, end). */
export function checkRecharge(sku: RechargeSku | undefined, now: Date): Accepted | Refusal {
  if (!sku) return { ok: false, code: 'ERR_BIZ_010', info: 'unknown sku' };
  return activityRefusal(sku.activity, now) ?? { ok: true, sku };
}

export const SOLD_OUT: Refusal = { ok: false, code: 'ERR_BIZ_005', info: 'sku stock exhausted' };

export const isUnlimited = (stockCount: number): boolean => stockCount < 0;

/** The unit just taken was the last one: the `sku.stock_zero` event goes with this order. */
export const tookLastUnit = (remaining: number): boolean => remaining === 0;

export type RechargeOrder = Readonly<{
  orderId: string;
  userId: string;
  sku: number;
  activityId: number;
  activityName: string;
  strategyId: number;
  orderTime: Date;
  totalCount: number;
  dayCount: number;
  monthCount: number;
  payType: PayType;
  payAmount: string;
  outBusinessNo: string;
}>;

export function rechargeOrder(req: RechargeRequest, sku: RechargeSku, orderId: string, now: Date): RechargeOrder {
  return {
    orderId,
    userId: req.userId,
    sku: sku.sku,
    activityId: sku.activity.activityId,
    activityName: sku.activity.name,
    strategyId: sku.activity.strategyId,
    orderTime: now,
    totalCount: sku.counts.totalCount,
    dayCount: sku.counts.dayCount,
    monthCount: sku.counts.monthCount,
    payType: req.payType,
    payAmount: req.payAmount,
    outBusinessNo: req.outBusinessNo,
  };
}

/** What the stock said for an accepted request: nothing to take, a unit taken (`remaining` after it), or none left. */
export type StockResult = Readonly<{ kind: 'unlimited' } | { kind: 'taken'; remaining: number } | { kind: 'sold-out' }>;

/** A refusal as it is kept (as long as orders are): a redelivery of the same request finds it and is a duplicate. */
export type Rejection = Readonly<{ userId: string; sku: number; outBusinessNo: string; code: Refusal['code']; info: string; messageId: string; time: Date }>;

/** The whole outcome of a new recharge request: a rejection, or an order with its credit period; each with its events. */
export type RechargeDecision =
  | Readonly<{ kind: 'rejected'; rejection: Rejection; events: readonly DomainEvent[] }>
  | Readonly<{ kind: 'credited'; order: RechargeOrder; period: Period; events: readonly DomainEvent[] }>;

/**
 * After the catalog check and, for an accepted limited SKU, the stock take. `id` names the order, or
 * the rejection's event. A credit's day / month go to today's / this month's rows where they exist.
 */
export function decideRecharge(req: RechargeRequest, gate: Accepted | Refusal, stock: StockResult | undefined, id: string, now: Date, timeZone: string): RechargeDecision {
  if (!gate.ok) return rejected(req, gate, id, now);
  if (!stock) throw new Error('an accepted recharge is decided with its stock result');
  if (stock.kind === 'sold-out') return rejected(req, SOLD_OUT, id, now);
  const order = rechargeOrder(req, gate.sku, id, now);
  const events: DomainEvent[] = [{ topic: 'recharge.completed', userId: req.userId, data: completedPayload(order) }];
  if (stock.kind === 'taken' && tookLastUnit(stock.remaining)) events.push({ topic: 'sku.stock_zero', userId: req.userId, data: { sku: gate.sku.sku } });
  return { kind: 'credited', order, period: periodOf(now, timeZone), events };
}

function rejected(req: RechargeRequest, r: Refusal, id: string, now: Date): RechargeDecision {
  const messageId = `recharge.rejected:${id}`;
  const rejection: Rejection = { userId: req.userId, sku: req.sku, outBusinessNo: req.outBusinessNo, code: r.code, info: r.info, messageId, time: now };
  return { kind: 'rejected', rejection, events: [{ topic: 'recharge.rejected', userId: req.userId, messageId, data: rejectedPayload(req, r) }] };
}

/** `recharge.completed` payload (contract §5). */
export function completedPayload(o: RechargeOrder): Record<string, unknown> {
  return {
    orderId: o.orderId,
    userId: o.userId,
    sku: o.sku,
    activityId: o.activityId,
    totalCount: o.totalCount,
    dayCount: o.dayCount,
    monthCount: o.monthCount,
    outBusinessNo: o.outBusinessNo,
  };
}

/** `recharge.rejected` payload (contract §5). */
export function rejectedPayload(req: Pick<RechargeRequest, 'userId' | 'sku' | 'outBusinessNo'>, r: Refusal): Record<string, unknown> {
  return { userId: req.userId, sku: req.sku, outBusinessNo: req.outBusinessNo, code: r.code, info: r.info };
}

/** The rebate's unique business id: the same behavior + outBusinessNo grants once per SKU. */
export const rebateBizId = (userId: string, behavior: string, sku: number, outBusinessNo: string): string => `${userId}_${behavior}_${sku}_${outBusinessNo}`;
