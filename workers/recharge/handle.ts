import { createHash, randomInt } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import { periodOf } from '../../domain/calendar';
import {
  SOLD_OUT,
  checkRecharge,
  completedPayload,
  isUnlimited,
  rebateBizId,
  rechargeOrder,
  rejectedPayload,
  tookLastUnit,
  type RechargeRequest,
  type Refusal,
} from '../../domain/recharge';
import type { CatalogReader, SkuView } from '../../infra/catalog-read';
import { crashPoint } from '../../infra/crash';
import type { Tx } from '../../infra/db';
import { enqueue, type EnqueuedTask, type OutboundEvent } from '../../infra/outbox';
import { holdForFastPath, publishNow } from '../../infra/relay';
import type { UserShard } from '../../infra/shards';
import { ensureStock, giveBackStock, releaseStock, skuLockKey, takeStock, type Reservation } from '../../infra/stock';
import { TOPICS } from '../../infra/topology';
import type { Context } from '../../infra/context';
import { parseBehavior, parseRecharge } from './message';
import { alreadyHandled, insertOrderAndCredit, insertRebateOrder, lockRequest } from './store';

export type Deps = Context & Readonly<{ catalog: CatalogReader }>;

export type Outcome =
  | { kind: 'credited'; orderId: string; remaining: number | undefined }
  | { kind: 'rejected'; code: Refusal['code'] }
  | { kind: 'duplicate' };

/** Thrown inside a transaction when the SKU has no counter: roll back, rebuild, try again. */
class StockMissing extends Error {
  constructor(readonly sku: number) {
    super(`stock counter of sku ${sku} is missing`);
  }
}

/** The deterministic id of a refusal's event: a redelivery writes no second one, and finds it as "handled". */
export const rejectionMessageId = (userId: string, outBusinessNo: string): string =>
  `recharge.rejected:${createHash('sha256').update(`${userId}\0${outBusinessNo}`).digest('hex')}`;

const newOrderId = (): string => String(randomInt(100_000_000_000, 1_000_000_000_000));

export async function handleRecharge(deps: Deps, msg: ConsumeMessage): Promise<void> {
  const req = parseRecharge(msg);
  crashPoint(`recharge-message:${req.outBusinessNo}`);
  const now = new Date();
  const view = await deps.catalog.sku(req.sku);
  const db = deps.dbs.forUser(req.userId);
  const outcome = await inShardTransaction(deps, db, req.userId, async (tx, held) => {
    await lockRequest(tx, req.userId, req.outBusinessNo);
    return recharge(deps, tx, db, held, req, view, now);
  });
  deps.log.debug({ userId: req.userId, sku: req.sku, outBusinessNo: req.outBusinessNo, ...outcome }, 'recharge handled');
}

export async function handleBehavior(deps: Deps, msg: ConsumeMessage): Promise<void> {
  const b = parseBehavior(msg);
  const rebates = await deps.catalog.rebates(b.behavior);
  if (!rebates.length) {
    deps.log.info({ userId: b.userId, behavior: b.behavior, outBusinessNo: b.outBusinessNo }, 'no open rebate for this behavior, nothing granted');
    return;
  }
  const now = new Date();
  const db = deps.dbs.forUser(b.userId);
  for (const rebate of rebates) {
    const bizId = rebateBizId(b.userId, b.behavior, rebate.sku, b.outBusinessNo);
    // The recharge is keyed by the biz id; a long one is hashed to fit out_business_no (128).
    const outBusinessNo = bizId.length <= 128 ? bizId : `rebate_${createHash('sha256').update(bizId).digest('hex')}`;
    const req: RechargeRequest = { userId: b.userId, sku: rebate.sku, outBusinessNo, payType: 'free', payAmount: '0' };
    const view = await deps.catalog.sku(rebate.sku);
    const outcome = await inShardTransaction(deps, db, b.userId, async (tx, held) => {
      await lockRequest(tx, req.userId, req.outBusinessNo);
      const row = { userId: b.userId, orderId: newOrderId(), behavior: b.behavior, desc: rebate.desc, sku: rebate.sku, outBusinessNo: b.outBusinessNo, bizId };
      if (!(await insertRebateOrder(tx, db.suffix, row))) return { kind: 'duplicate', tasks: [] } as const;
      return recharge(deps, tx, db, held, req, view, now);
    });
    deps.log.debug({ userId: b.userId, behavior: b.behavior, bizId, ...outcome }, 'behavior rebate handled');
  }
}

/** One recharge inside the caller's transaction, which holds the request lock: dedupe, decide, take stock, write. */
async function recharge(deps: Deps, tx: Tx, db: UserShard, held: Reservation[], req: RechargeRequest, view: SkuView | undefined, now: Date): Promise<Outcome & { tasks: EnqueuedTask[] }> {
  const rejectionId = rejectionMessageId(req.userId, req.outBusinessNo);
  const check = checkRecharge(view, now);
  // A limited SKU's shared lock is taken with the dedupe check, before the stock take.
  const limited = check.ok && !isUnlimited(check.sku.stockCount);
  if (await alreadyHandled(tx, db.suffix, req.userId, req.outBusinessNo, rejectionId, limited ? skuLockKey(check.sku.sku) : undefined)) return { kind: 'duplicate', tasks: [] };
  const reject = async (r: Refusal) => {
    const tasks = await enqueue(tx, [{ topic: TOPICS.rechargeRejected, userId: req.userId, data: rejectedPayload(req, r), messageId: rejectionId }], now, holdForFastPath());
    return { kind: 'rejected' as const, code: r.code, tasks };
  };
  if (!check.ok) return reject(check);
  const sku = check.sku;
  const orderId = newOrderId();
  let remaining: number | undefined;
  if (limited) {
    const take = await takeStock(deps.redis, sku.sku, req.userId, req.outBusinessNo, orderId);
    if (take.kind === 'missing') throw new StockMissing(sku.sku);
    if (take.kind === 'sold-out') return reject(SOLD_OUT);
    held.push(take.reservation);
    remaining = take.remaining;
  }
  const order = rechargeOrder(req, sku, orderId, now);
  const { day, month } = periodOf(now, deps.config.timeZone);
  const events: OutboundEvent[] = [{ topic: TOPICS.rechargeCompleted, userId: req.userId, data: completedPayload(order) }];
  if (remaining !== undefined && tookLastUnit(remaining)) events.push({ topic: TOPICS.skuStockZero, userId: req.userId, data: { sku: sku.sku } });
  await insertOrderAndCredit(tx, db.suffix, order, day, month);
  return { kind: 'credited', orderId, remaining, tasks: await enqueue(tx, events, now, holdForFastPath()) };
}

/**
 * Runs `fn` in a transaction on the user's shard (grouped with other messages', see
 * infra/group-commit.ts) and settles the stock it took: released after commit, given back after a
 * rollback, left to the reaper when the commit's outcome is unknown. A missing counter is rebuilt
 * and the whole transaction tried again.
 */
async function inShardTransaction<T extends { tasks: EnqueuedTask[] }>(deps: Deps, db: UserShard, userId: string, fn: (tx: Tx, held: Reservation[]) => Promise<T>): Promise<Omit<T, 'tasks'>> {
  for (let attempt = 1; ; attempt++) {
    let held: Reservation[] = [];
    try {
      const result = await db.group.run({
        key: userId,
        async run(tx) {
          held = [];
          const r = await fn(tx, held);
          crashPoint('recharge-before-commit');
          return r;
        },
        async undo() {
          const taken = held;
          held = [];
          await Promise.all(taken.map((r) => giveBackStock(deps.redis, r))).catch((e) => deps.log.warn({ err: e }, 'unit not given back, the reaper will'));
        },
      });
      crashPoint('recharge-after-commit');
      await Promise.all(held.map((r) => releaseStock(deps.redis, r))).catch((err) => deps.log.warn({ err }, 'reservation not released, the reaper will'));
      await publishNow(deps.broker, db.ds, result.tasks, deps.log);
      const { tasks: _tasks, ...rest } = result;
      return rest;
    } catch (err) {
      // A rollback gave the units back (undo); any still held belong to a commit of unknown outcome.
      if (held.length) deps.log.warn({ err }, 'commit outcome unknown, the reaper settles the stock');
      if (err instanceof StockMissing && attempt <= 5) {
        const state = await ensureStock(deps.dbs, deps.redis, err.sku, deps.log);
        if (state === 'unknown') throw new Error(`sku ${err.sku} vanished from the catalog`);
        continue;
      }
      throw err;
    }
  }
}
