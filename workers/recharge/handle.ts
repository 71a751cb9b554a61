import { createHash } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import { checkRecharge, decideRecharge, isUnlimited, rebateBizId, type RechargeDecision, type RechargeRequest, type StockResult } from '../../domain/recharge';
import type { CatalogReader, SkuView } from '../../infra/catalog-read';
import { crashPoint } from '../../infra/crash';
import type { Tx } from '../../infra/db';
import { batched, type Batch } from '../../infra/group-commit';
import type { Clock } from '../../infra/ids';
import type { Logger } from '../../infra/log';
import type { EnqueuedTask } from '../../infra/outbox';
import type { Redis } from '../../infra/redis';
import type { Databases, UserShard } from '../../infra/shards';
import { ensureStock, skuLockKey } from '../../infra/stock';
import { stockHold, type StockHold } from '../../infra/stock-hold';
import type { OutboxPort } from '../outbox-port';
import { parseBehavior, parseRecharge } from './message';
import {
  alreadyHandled,
  alreadyHandledAll,
  insertOrderAndCredit,
  insertOrdersAndCredit,
  insertRebateOrder,
  insertRejection,
  insertRejections,
  lockRequest,
  lockRequests,
  type RebateRow,
} from './store';
import { mutated } from '../../infra/mutation';
import { TransientError } from '../../infra/errors';

/** What the recharge handlers use, and nothing more. */
export type Deps = Readonly<{
  log: Logger;
  outbox: OutboxPort;
  dbs: Databases;
  redis: Redis;
  catalog: CatalogReader;
  timeZone: string;
  clock: Clock;
  newOrderId: () => string;
}>;

export type Outcome = Readonly<{ kind: 'credited'; orderId: string } | { kind: 'rejected'; code: string } | { kind: 'duplicate' }>;

/** A unit's result: an outcome with the tasks it wrote, or "the SKU has no counter" (nothing written: rebuild, run again). */
type UnitResult = (Outcome & Readonly<{ tasks: EnqueuedTask[] }>) | Readonly<{ kind: 'stock-missing'; sku: number }> | Readonly<{ kind: 'stock-pending'; sku: number }>;

export async function handleRecharge(d: Deps, msg: ConsumeMessage): Promise<void> {
  const req = parseRecharge(msg);
  crashPoint(`recharge-message:${req.outBusinessNo}`);
  const now = d.clock();
  const outcome = await rechargeOnShard(d, req, await d.catalog.sku(req.sku), now);
  d.log.debug({ userId: req.userId, sku: req.sku, outBusinessNo: req.outBusinessNo, ...outcome }, 'recharge handled');
}

export async function handleBehavior(d: Deps, msg: ConsumeMessage): Promise<void> {
  const b = parseBehavior(msg);
  const rebates = await d.catalog.rebates(b.behavior);
  if (!rebates.length) {
    d.log.info({ userId: b.userId, behavior: b.behavior, outBusinessNo: b.outBusinessNo }, 'no open rebate for this behavior, nothing granted');
    return;
  }
  const now = d.clock();
  for (const rebate of rebates) {
    const bizId = rebateBizId(b.userId, b.behavior, rebate.sku, b.outBusinessNo);
    // The recharge is keyed by the biz id; a long one is hashed to fit out_business_no (128).
    const outBusinessNo = bizId.length <= 128 ? bizId : `rebate_${createHash('sha256').update(bizId).digest('hex')}`;
    const req: RechargeRequest = { userId: b.userId, sku: rebate.sku, outBusinessNo, payType: 'free', payAmount: '0' };
    const row = (orderId: string): RebateRow => ({ userId: b.userId, orderId, behavior: b.behavior, desc: rebate.desc, sku: rebate.sku, outBusinessNo: b.outBusinessNo, bizId });
    const outcome = await rechargeOnShard(d, req, await d.catalog.sku(rebate.sku), now, row);
    d.log.debug({ userId: b.userId, behavior: b.behavior, bizId, ...outcome }, 'behavior rebate handled');
  }
}

/**
 * One recharge as a unit of the user's shard (grouped with other messages', infra/group-commit.ts),
 * and its stock settled: released after commit, given back after a rollback, left to the reaper
 * when the commit's outcome is unknown. A missing counter is rebuilt and the unit run again.
 */
async function rechargeOnShard(d: Deps, req: RechargeRequest, view: SkuView | undefined, now: Date, rebate?: (orderId: string) => RebateRow): Promise<Outcome> {
  const db = d.dbs.forUser(req.userId);
  for (let attempt = 1; ; attempt++) {
    const stock = stockHold(d.redis, d.log);
    const input: RechargeInput = { db, stock, req, view, now, rebate };
    let result: UnitResult;
    try {
      result = await db.group.run({
        key: req.userId,
        async run(tx) {
          const r = await rechargeIn(d, tx, input);
          crashPoint('recharge-before-commit');
          return r;
        },
        undo: () => stock.undo(),
        batch: batched(batchOf(d), input),
      });
    } catch (err) {
      // A rollback gave the units back (undo); any still held belong to a commit of unknown outcome.
      if (stock.holding()) d.log.warn({ err }, 'commit outcome unknown, the reaper settles the stock');
      throw err;
    }
    crashPoint('recharge-after-commit');
    await stock.settle();
    if (result.kind === 'stock-missing') {
      if (attempt > 5) throw new Error(`stock counter of sku ${result.sku} still missing after ${attempt} rebuilds`);
      if ((await ensureStock(d.dbs, d.redis, result.sku, d.log)) === 'unknown') throw new Error(`sku ${result.sku} vanished from the catalog`);
      continue;
    }
    // Not sold out while units are reserved by others: retried (held) until they are orders or back.
    if (result.kind === 'stock-pending') throw new TransientError('redis', 'contention', `sku ${result.sku}: no unit left, some still reserved by unsettled transactions`);
    const { tasks, ...outcome } = result;
    await d.outbox.publish(db, tasks);
    return outcome;
  }
}

/** What one recharge's transaction work needs. */
type RechargeInput = Readonly<{ db: UserShard; stock: StockHold; req: RechargeRequest; view: SkuView | undefined; now: Date; rebate?: (orderId: string) => RebateRow }>;

/** Inside the unit's transaction: request lock, dedupe, the decision (after the stock take), its writes. */
async function rechargeIn(d: Deps, tx: Tx, input: RechargeInput): Promise<UnitResult> {
  const { db, req } = input;
  await lockRequest(tx, req.userId, req.outBusinessNo);
  const seen = await alreadyHandled(tx, db.suffix, req.userId, req.outBusinessNo, skuLockOf(input));
  const decided = await decide(d, input, seen);
  if (decided.kind !== 'decided') return decided;
  const tasks = await write(d, tx, db, decided.decision, input.now);
  await writeRebate(d, tx, input);
  return resultOf(decided, tasks);
}

/** A limited SKU's shared lock, taken before the dedupe check and the stock take. */
function skuLockOf({ req, view, now }: RechargeInput): string | undefined {
  const gate = checkRecharge(view, now);
  return gate.ok && !isUnlimited(gate.sku.stockCount) ? skuLockKey(req.sku) : undefined;
}

type Decided = Readonly<{ kind: 'decided'; decision: RechargeDecision; orderId: string }>;

/** After the lock and the dedupe check: a duplicate, a stock result to act on, or the decision (after the stock take). */
async function decide(d: Deps, { stock, req, view, now }: RechargeInput, seen: boolean): Promise<Decided | UnitResult> {
  if (seen && !mutated('no-dedupe')) return { kind: 'duplicate', tasks: [] };
  const gate = checkRecharge(view, now);
  const orderId = d.newOrderId();
  let taken: StockResult | undefined;
  if (gate.ok && isUnlimited(gate.sku.stockCount)) taken = { kind: 'unlimited' };
  else if (gate.ok) {
    const t = await stock.take(gate.sku.sku, req.userId, req.outBusinessNo, orderId);
    if (t.kind === 'missing') return { kind: 'stock-missing', sku: gate.sku.sku };
    if (t.kind === 'pending') return { kind: 'stock-pending', sku: gate.sku.sku };
    taken = t;
  }
  return { kind: 'decided', decision: decideRecharge(req, gate, taken, orderId, now, d.timeZone), orderId };
}

/** Written with its recharge, so the dedupe check also answers for the rebate. */
async function writeRebate(d: Deps, tx: Tx, { db, req, rebate }: RechargeInput): Promise<void> {
  if (rebate && !(await insertRebateOrder(tx, db.suffix, rebate(d.newOrderId())))) throw new Error(`rebate order of ${req.outBusinessNo} exists without its recharge`);
}

const resultOf = ({ decision, orderId }: Decided, tasks: EnqueuedTask[]): UnitResult =>
  decision.kind === 'credited' ? { kind: 'credited', orderId, tasks } : { kind: 'rejected', code: decision.rejection.code, tasks };

const batches = new WeakMap<Deps, Batch<RechargeInput, UnitResult>>();
const batchOf = (d: Deps): Batch<RechargeInput, UnitResult> => batches.get(d) ?? batches.set(d, rechargeBatch(d)).get(d)!;

/**
 * `rechargeIn` for a group of recharges on one shard database (docs/BENCHMARKS.md, hot-path row 22):
 * one statement takes the request locks in the group's order and then its SKUs' shared locks in key
 * order, one checks every request, the stock takes and decisions go one by one as alone, then one statement
 * credits every credited recharge, one keeps every refusal and one writes every task; a rebate's
 * order is written on its own. Each unit's `undo` gives its stock back after a rollback, as alone.
 */
function rechargeBatch(d: Deps): Batch<RechargeInput, UnitResult> {
  return {
    async run(tx, members) {
      const inputs = members.map((m) => m.input);
      const refs = inputs.map((u) => ({ suffix: u.db.suffix, userId: u.req.userId, outBusinessNo: u.req.outBusinessNo, skuLock: skuLockOf(u) }));
      await lockRequests(tx, refs);
      const { suffixes } = inputs[0]!.db;
      const seen = await alreadyHandledAll(tx, suffixes, refs);
      const decided: Array<Decided | UnitResult> = [];
      for (const [i, u] of inputs.entries()) decided.push(await decide(d, u, seen[i]!));
      const writes = decided.flatMap((x, i) => (x.kind === 'decided' ? [{ i, ...x, input: inputs[i]! }] : []));
      await insertOrdersAndCredit(
        tx,
        suffixes,
        writes.flatMap(({ decision, input }) => (decision.kind === 'credited' ? [{ suffix: input.db.suffix, order: decision.order, day: decision.period.day, month: decision.period.month }] : [])),
      );
      await insertRejections(
        tx,
        suffixes,
        writes.flatMap(({ decision, input }) => (decision.kind === 'rejected' ? [{ suffix: input.db.suffix, rejection: decision.rejection }] : [])),
      );
      const rows = await Promise.all(writes.map(({ i, decision, input }) => Promise.all(decision.events.map((e) => members[i]!.within(() => d.outbox.hold(input.db, e, input.now))))));
      const enqueued = new Map((await d.outbox.insert(tx, inputs[0]!.db, rows.flat())).map((t) => [t.messageId, t]));
      for (const { input } of writes) await writeRebate(d, tx, input);
      const written = new Map(writes.map((w, k) => [w.i, rows[k]!.flatMap((r) => enqueued.get(r.envelope.id) ?? [])]));
      const results = decided.map((x, i) => (x.kind === 'decided' ? resultOf(x, written.get(i)!) : x));
      crashPoint('recharge-before-commit');
      return results;
    },
  };
}

async function write(d: Deps, tx: Tx, db: UserShard, decision: RechargeDecision, now: Date): Promise<EnqueuedTask[]> {
  if (decision.kind === 'credited') await insertOrderAndCredit(tx, db.suffix, decision.order, decision.period.day, decision.period.month);
  else await insertRejection(tx, db.suffix, decision.rejection);
  return d.outbox.enqueue(tx, db, decision.events, now);
}
