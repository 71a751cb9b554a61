import type { ConsumeMessage } from 'amqplib';
import { PAY_TYPES, type PayType, type RechargeRequest } from '../../domain/recharge';
import { field, invalid, readBody } from '../../infra/envelope';
import { QUEUES } from '../../infra/topology';

export const RECHARGE_QUEUE = QUEUES.recharge;
export const BEHAVIOR_QUEUE = QUEUES.behavior;

export type BehaviorMessage = Readonly<{ userId: string; behavior: string; outBusinessNo: string }>;

/** `{userId, sku, outBusinessNo, payType?, payAmount?}`; anything else is a PermanentError naming the field. */
export function parseRecharge(msg: ConsumeMessage): RechargeRequest {
  const { data } = readBody(msg);
  const userId = field.identifier(data, 'userId');
  const sku = field.id(data, 'sku');
  const outBusinessNo = field.identifier(data, 'outBusinessNo');
  let payType: PayType = 'free';
  if (data.payType !== undefined && data.payType !== null) {
    if (!(PAY_TYPES as readonly unknown[]).includes(data.payType)) throw invalid(`payType must be one of ${PAY_TYPES.join(', ')}`);
    payType = data.payType as PayType;
  }
  let payAmount = '0';
  if (data.payAmount !== undefined && data.payAmount !== null) {
    if (typeof data.payAmount !== 'string' || !/^\d{1,10}(\.\d{1,2})?$/.test(data.payAmount)) throw invalid('payAmount must be a decimal string like "12.50", 0 or more');
    payAmount = data.payAmount;
  }
  return { userId, sku, outBusinessNo, payType, payAmount };
}

/** `{userId, behavior, outBusinessNo}`; each id any printable Unicode of 1–128 characters. */
export function parseBehavior(msg: ConsumeMessage): BehaviorMessage {
  const { data } = readBody(msg);
  return {
    userId: field.identifier(data, 'userId'),
    behavior: field.identifier(data, 'behavior'),
    outBusinessNo: field.identifier(data, 'outBusinessNo'),
  };
}
