import type { Activity, CountPackage } from './catalog';

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

/** Catalog checks before any stock is touched: SKU known, activity open, now within its dates. */
export function checkRecharge(sku: RechargeSku | undefined, now: Date): Accepted | Refusal {
  if (!sku) return { ok: false, code: 'ERR_BIZ_010', info: 'unknown sku' };
  const a = sku.activity;
  if (a.state !== 'open') return { ok: false, code: 'ERR_BIZ_003', info: `activity ${a.activityId} is not open (${a.state})` };
  if (now < a.beginTime || now >= a.endTime) {
    return { ok: false, code: 'ERR_BIZ_004', info: `activity ${a.activityId} runs from ${a.beginTime.toISOString()} to ${a.endTime.toISOString()}` };
  }
  return { ok: true, sku };
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
export const rebateBizId = (userId: string, behavior: string, sku: number, outBusinessNo: string): string =>
  `${userId}_${behavior}_${sku}_${outBusinessNo}`;
