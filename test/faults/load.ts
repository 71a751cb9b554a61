import { randomUUID } from 'node:crypto';
import { QUEUES } from '../../infra/topology';
import type { CancelInput, PartakeInput, RechargeInput, UseInput } from '../support/books';
import { sleep, type Reply, type World } from './world';

export const ACTIVITY = 100301;
/** Count packages: SKU 9011 and 9013 grant 1/1/1, SKU 9012 grants 10/10/10. */
export const SKU = { unlimited: 9011, quota10: 9012, limited: 9013 } as const;

/** The suite's catalog; `ttlSeconds` gives the activity's raffle orders an expiry. */
export function catalog(limitedStock = 100, o: { ttlSeconds?: number } = {}) {
  return {
    activities: [
      {
        activityId: ACTIVITY,
        name: 'Fault raffle',
        desc: 'fault suite',
        strategyId: 100006,
        beginTime: '2020-01-01T00:00:00Z',
        endTime: '2099-01-01T00:00:00Z',
        state: 'open',
        ...(o.ttlSeconds ? { raffleOrderTtlSeconds: o.ttlSeconds } : {}),
      },
    ],
    counts: [
      { activityCountId: 11101, totalCount: 1, dayCount: 1, monthCount: 1 },
      { activityCountId: 11102, totalCount: 10, dayCount: 10, monthCount: 10 },
    ],
    skus: [
      { sku: SKU.unlimited, activityId: ACTIVITY, activityCountId: 11101, stockCount: -1, productAmount: '0' },
      { sku: SKU.quota10, activityId: ACTIVITY, activityCountId: 11102, stockCount: -1, productAmount: '0' },
      { sku: SKU.limited, activityId: ACTIVITY, activityCountId: 11101, stockCount: limitedStock, productAmount: '0' },
    ],
    behaviorRebates: [],
  };
}

let seq = 0;
const runTag = Math.random().toString(36).slice(2, 6);

/** Recharges with known (userId, outBusinessNo): `count` messages over `users` users, round robin. */
export function recharges(count: number, o: { users?: number; sku?: number; prefix?: string } = {}): RechargeInput[] {
  const users = o.users ?? 50;
  const tag = `${o.prefix ?? 'r'}-${runTag}-${++seq}`;
  return Array.from({ length: count }, (_, i) => ({ userId: `${tag}-u${i % users}`, outBusinessNo: `${tag}-${i}`, sku: o.sku ?? SKU.unlimited }));
}

/**
 * Publishes `inputs` with confirms, `concurrency` at a time, retrying each until the broker has it;
 * `onProgress(n)` after each. With `copies` > 1 each message goes out that many times at once
 * (same payload and message id), as a redelivering upstream would.
 */
export async function send(w: World, inputs: readonly RechargeInput[], o: { concurrency?: number; copies?: number; onProgress?: (n: number) => void; ratePerSec?: number } = {}): Promise<void> {
  let next = 0;
  let done = 0;
  const started = Date.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= inputs.length) return;
      if (o.ratePerSec) {
        const due = started + (i / o.ratePerSec) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const r = inputs[i]!;
      const messageId = `m-${r.userId}-${r.outBusinessNo}`;
      await Promise.all(Array.from({ length: o.copies ?? 1 }, () => w.caller.publish(QUEUES.recharge, { userId: r.userId, sku: r.sku, outBusinessNo: r.outBusinessNo }, { messageId })));
      o.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 20 }, worker));
}

/** Resolves once `n` of the load has been published (for injecting a fault mid-stream). */
export function progress(): { tick: (n: number) => void; reached: (n: number) => Promise<void> } {
  let at = 0;
  const waiters: Array<{ n: number; f: () => void }> = [];
  return {
    tick(n) {
      at = n;
      for (const w of [...waiters]) if (at >= w.n) waiters.splice(waiters.indexOf(w), 1), w.f();
    },
    reached: (n) => (at >= n ? Promise.resolve() : new Promise<void>((f) => waiters.push({ n, f }))),
  };
}

/**
 * One logical partake as a careful caller makes it: retry after each timeout or `0001` (nothing
 * changed), and once a reply has come, wait for the replies of the earlier attempts too (they must
 * all name the same order). `sentAt` / `okAt` are the test's own clock around the call.
 */
export async function partakeCall(w: World, userId: string, o: { timeoutMs?: number; lateMs?: number; maxAttempts?: number } = {}): Promise<PartakeInput> {
  const replies: Array<{ code: string; orderId?: string }> = [];
  const sentAt = Date.now();
  let okAt: number | undefined;
  const record = (r: Reply) => {
    replies.push({ code: r.code, orderId: r.data?.orderId !== undefined ? String(r.data.orderId) : undefined });
    if (r.code === '0000') okAt ??= Date.now();
  };
  // Every attempt of one call carries the first one's message id, as a careful caller's retry does:
  // the service answers a late attempt with the order of the first, never with a new one.
  const messageId = randomUUID();
  for (let a = 0; a < (o.maxAttempts ?? 50); a++) {
    const r = await w.caller
      .rpc(QUEUES.partake, { userId, activityId: ACTIVITY }, o.timeoutMs ?? 10_000, record, messageId)
      .then((x) => (record(x), x))
      .catch(() => undefined);
    if (r && r.code !== '0001') break;
    if (r) await sleep(200);
  }
  // Late replies to the attempts that timed out are recorded too: all must name the same order.
  if (o.lateMs) await sleep(o.lateMs);
  return { userId, activityId: ACTIVITY, replies, sentAt, okAt };
}

/** Marks a raffle order used (request/reply, retried after timeouts and `0001`; late replies recorded). */
export async function useOrder(w: World, userId: string, orderId: string, timeoutMs = 10_000): Promise<UseInput> {
  const replies: Array<{ code: string }> = [];
  const record = (r: Reply) => replies.push({ code: r.code });
  let attempts = 0;
  while (attempts < 50) {
    attempts++;
    const r = await w.caller
      .rpc(QUEUES.raffleOrderUsed, { userId, orderId }, timeoutMs, record)
      .then((x) => (record(x), x))
      .catch(() => undefined);
    if (r && r.code !== '0001') break;
    if (r) await sleep(200);
  }
  return { userId, orderId, replies, attempts };
}

/** Cancels a raffle order (request/reply, retried after timeouts and `0001`; late replies recorded). */
export async function cancelOrder(w: World, userId: string, orderId: string, timeoutMs = 10_000): Promise<CancelInput> {
  const replies: Array<{ code: string }> = [];
  const record = (r: Reply) => replies.push({ code: r.code });
  for (let a = 0; a < 50; a++) {
    const r = await w.caller
      .rpc(QUEUES.raffleOrderCancel, { userId, orderId }, timeoutMs, record)
      .then((x) => (record(x), x))
      .catch(() => undefined);
    if (r && r.code !== '0001') break;
    if (r) await sleep(200);
  }
  return { userId, orderId, replies };
}

/** An account query answered (retried after timeouts): false if it never was. */
export async function queryAccount(w: World, userId: string, timeoutMs = 3_000): Promise<boolean> {
  for (let a = 0; a < 50; a++) {
    const r = await w.caller.rpc(QUEUES.accountQuery, { userId, activityId: ACTIVITY }, timeoutMs).catch(() => undefined);
    if (r?.code === '0000') return true;
    if (r) await sleep(200);
  }
  return false;
}
