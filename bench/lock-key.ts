import { createHash } from 'node:crypto';

/** The recharge worker's 64-bit advisory lock key of a text (a copy: the ceiling issues the same lock). */
export function lockKey(text: string): string {
  return BigInt.asIntN(64, BigInt(`0x${createHash('sha256').update(text).digest('hex').slice(0, 16)}`)).toString();
}
