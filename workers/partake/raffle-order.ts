import { decideCancel, refuseChange, sameChangeAgain, type CancelDecision } from '../../domain/raffle-order';
import { requestReply, type Handler, type Reply } from '../../infra/amqp';
import { crashPoint } from '../../infra/crash';
import type { Tx } from '../../infra/db';
import { batched, type Batch } from '../../infra/group-commit';
import { mutated } from '../../infra/mutation';
import { enqueuedTask, type EnqueuedTask } from '../../infra/outbox';
import type { UserShard } from '../../infra/shards';
import { orderData, refused, success, type Deps } from './handle';
import { RAFFLE_ORDER_CANCEL_QUEUE, RAFFLE_ORDER_USED_QUEUE, parseOrderRequest, type OrderRequest } from './message';
import { applyCancel, findOrder, lockForCancel, useOrder, useOrders, type FoundOrder } from './order-store';

/** `activity.raffle-order.used` and `.cancel`: a reply if `replyTo` is set, else applied and refusals logged. */
export function raffleOrderUsedHandler(d: Deps): Handler {
  const batch = useBatch();
  return requestReply(d.broker, { queue: RAFFLE_ORDER_USED_QUEUE, parse: parseOrderRequest, run: (req) => useRaffleOrder(d, batch, req), replyRequired: false });
}

export const raffleOrderCancelHandler = (d: Deps): Handler =>
  requestReply(d.broker, {
    queue: RAFFLE_ORDER_CANCEL_QUEUE,
    parse: parseOrderRequest,
    replyRequired: false,
    async run(req) {
      const c = await cancelRaffleOrder(d, req, 'request');
      return c.kind === 'cancel' ? success({ ...orderData(c.order), refund: c.refund }) : refused(c.refusal);
    },
  });

/** What one use's transaction work needs. */
type UseInput = Readonly<{ suffix: string; suffixes: readonly string[]; req: OrderRequest; now: Date }>;

async function useRaffleOrder(d: Deps, batch: Batch<UseInput, Reply>, req: OrderRequest): Promise<Reply> {
  const { suffix, suffixes, group } = d.dbs.forUser(req.userId);
  const input = { suffix, suffixes, req, now: d.clock() };
  const reply = await group.run({ key: req.userId, run: (tx) => useIn(tx, input), batch: batched(batch, input) });
  if (reply.code === '0000') crashPoint('use-after-commit');
  return reply;
}

async function useIn(tx: Tx, { suffix, req, now }: UseInput): Promise<Reply> {
  const used = await useOrder(tx, suffix, req.userId, req.orderId, req.requestId, now);
  return used ? success(orderData(used)) : notUsed(tx, suffix, req);
}

/** The reply to a use that changed nothing. */
async function notUsed(tx: Tx, suffix: string, req: OrderRequest): Promise<Reply> {
  const order = await findOrder(tx, suffix, req.userId, req.orderId);
  // This request again (its first delivery applied, its reply was lost with its worker).
  if (order && sameChangeAgain(order.orderState, order.changedBy, req.requestId, 'used') && !mutated('no-use-replay')) return success(orderData(order));
  // Someone else's 'create' → 'used' cannot be undone; a row still 'create' here means a racing use won.
  return refused(refuseChange(order?.orderState) ?? { code: 'ERR_BIZ_009', info: 'raffle order already used' });
}

/**
 * `useIn` for a group of uses on one shard database: one UPDATE per split table for all of them,
 * then, for each use that changed nothing (rare: a redelivery, a used or unknown order), the reads
 * `useIn` does. The rows are locked split table by split table, not in user order; cancels, which
 * also lock order rows, therefore never group (docs/DESIGN.md, group commit).
 */
function useBatch(): Batch<UseInput, Reply> {
  return {
    async run(tx, members) {
      const inputs = members.map((m) => m.input);
      const used = await useOrders(
        tx,
        inputs[0]!.suffixes,
        inputs.map(({ suffix, req, now }) => ({ suffix, userId: req.userId, orderId: req.orderId, now, requestId: req.requestId })),
      );
      const replies: Reply[] = [];
      for (const [i, { suffix, req }] of inputs.entries()) {
        const order = used[i];
        replies.push(order ? success(orderData(order)) : await notUsed(tx, suffix, req));
      }
      return replies;
    },
  };
}

type Cancelled = Readonly<{ decision: CancelDecision; tasks: EnqueuedTask[] }>;

/**
 * Cancels one unused order with its refund, as a unit of the user's shard: the same path for the
 * queue and the expiry job. Only this user's rows are locked, account first, in a transaction of
 * its own (`alone`): a group of cancels would hold one user's order while waiting for another's,
 * which a use batch, locking orders split table by split table, may hold in the opposite order.
 */
export async function cancelRaffleOrder(d: Deps, req: OrderRequest, why: 'request' | 'expired'): Promise<CancelDecision> {
  const db = d.dbs.forUser(req.userId);
  const now = d.clock();
  const out = await db.group.run({ key: req.userId, alone: true, run: (tx) => cancelIn(d, tx, db, req, now) });
  if (out.decision.kind === 'cancel') {
    void d.outbox.publish(db, out.tasks);
    d.log.debug({ ...req, why, refund: out.decision.refund }, 'raffle order cancelled');
  }
  return out.decision;
}

async function cancelIn(d: Deps, tx: Tx, db: UserShard, req: OrderRequest, now: Date): Promise<Cancelled> {
  const { suffix } = db;
  const locked = await lockForCancel(tx, suffix, req.userId, req.orderId);
  const order = locked ?? (await findOrder(tx, suffix, req.userId, req.orderId));
  if (!locked && order?.orderState === 'create') throw new Error(`unused raffle order ${req.orderId} has no account`);
  const again = order && cancelledBefore(d, order, req);
  if (again) return { decision: again, tasks: [] };
  const decision = decideCancel(order, now, d.timeZone);
  if (decision.kind === 'refused') return { decision, tasks: [] };
  const task = await d.outbox.hold(db, decision.events[0], now);
  const applied = await applyCancel(tx, suffix, decision, req.requestId, task, now);
  if (applied.ok) return { decision, tasks: applied.taskId ? [enqueuedTask(task, applied.taskId)] : [] };
  // A use committed between our read and the guarded update: it won, nothing was refunded.
  const refusal = refuseChange((await findOrder(tx, suffix, req.userId, req.orderId))?.orderState);
  return { decision: { kind: 'refused', refusal: refusal ?? { ok: false, code: 'ERR_BIZ_009', info: 'raffle order already used' } }, tasks: [] };
}

/**
 * This cancel request again, after its first delivery applied: answered with the refund that delivery
 * gave (decided again at the moment it cancelled, `changedAt`), nothing written, no event.
 */
function cancelledBefore(d: Deps, o: FoundOrder, req: OrderRequest): CancelDecision | undefined {
  if (!sameChangeAgain(o.orderState, o.changedBy, req.requestId, 'cancel')) return undefined;
  return decideCancel({ ...o, orderState: 'create' }, o.changedAt, d.timeZone);
}
