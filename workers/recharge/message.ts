import type { ConsumeMessage } from 'amqplib';
import { PAY_TYPES, type PayType, type RechargeRequest } from '../../domain/recharge';
import { field, invalid, readBody } from '../../infra/envelope';
import { QUEUES } from '../../infra/topology';

export const RECHARGE_QUEUE = QUEUES.recharge;
export const BEHAVIOR_QUEUE = QUEUES.behavior;

export type BehaviorMessage = Readonly<{ userId: string; behavior: string; outBusinessNo: string }>;

// SQL is parameterised; ids with quotes, `;`, backslashes or control characters are still refused as malformed
// (issue #3's input rules), which keeps them safe to print in logs, Redis keys and downstream systems.
const UNSAFE = /['";\\`\u0000-\u001f\u007f]/;

function identifier(o: Record<string, unknown>, name: string, max: number): string {
  const v = name === 'userId' ? field.userId(o, name) : field.string(o, name, max);
  if (UNSAFE.test(v)) throw invalid(`${name} contains a quote, semicolon, backslash or control character`);
  return v;
}

/** `{userId, sku, outBusinessNo, payType?, payAmount?}`; anything else is a PermanentError naming the field. */
export function parseRecharge(msg: ConsumeMessage): RechargeRequest {
  const { data } = readBody(msg);
  const userId = identifier(data, 'userId', 128);
  const sku = field.id(data, 'sku');
  const outBusinessNo = identifier(data, 'outBusinessNo', 128);
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

/** `{userId, behavior, outBusinessNo}`; behavior fits `behavior_type` (16 characters). */
export function parseBehavior(msg: ConsumeMessage): BehaviorMessage {
  const { data } = readBody(msg);
  return {
    userId: identifier(data, 'userId', 128),
    behavior: identifier(data, 'behavior', 16),
    outBusinessNo: identifier(data, 'outBusinessNo', 128),
  };
}
