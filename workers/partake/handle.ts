import { randomInt } from 'node:crypto';
import { periodOf } from '../../domain/calendar';
import type { Activity } from '../../domain/catalog';
import { checkActivity, decidePartake, quotaAsOf, refuseUse, type Refusal } from '../../domain/partake';
import { requestReply, type Handler, type Reply } from '../../infra/amqp';
import type { CatalogReader } from '../../infra/catalog-read';
import { crashPoint } from '../../infra/crash';
import type { Tx } from '../../infra/db';
import { enqueuedTask, taskRow, type EnqueuedTask } from '../../infra/outbox';
import { holdForFastPath, publishNow } from '../../infra/relay';
import { TOPICS } from '../../infra/topology';
import type { Context } from '../../infra/context';
import { PARTAKE_QUEUE, ACCOUNT_QUERY_QUEUE, RAFFLE_ORDER_USED_QUEUE, parseAccountRequest, parseUseRequest, type AccountRequest, type UseRequest } from './message';
import * as store from './store';
import type { RaffleOrder } from './store';

export type Deps = Readonly<{ ctx: Context; catalog: CatalogReader; clock: () => Date; newOrderId?: () => string }>;

const success = (data: unknown): Reply => ({ code: '0000', info: 'success', data });
const refused = (r: Refusal): Reply => ({ code: r.code, info: r.info });

/** A 12-digit numeric id; uniqueness is enforced by the split table's unique key (a clash is retried). */
export const newOrderId = (): string => String(randomInt(100_000_000_000, 1_000_000_000_000));

export const partakeHandler = (d: Deps): Handler =>
  requestReply(d.ctx.broker, { queue: PARTAKE_QUEUE, parse: parseAccountRequest, run: (req) => partake(d, req), replyRequired: true });

export const accountQueryHandler = (d: Deps): Handler =>
  requestReply(d.ctx.broker, { queue: ACCOUNT_QUERY_QUEUE, parse: parseAccountRequest, run: (req) => queryAccount(d, req), replyRequired: true });

export const raffleOrderUsedHandler = (d: Deps): Handler =>
  requestReply(d.ctx.broker, { queue: RAFFLE_ORDER_USED_QUEUE, parse: parseUseRequest, run: (req) => useRaffleOrder(d, req), replyRequired: false });

type PartakeOutcome =
  | Readonly<{ kind: 'refused'; refusal: Refusal }>
  | Readonly<{ kind: 'existing'; order: RaffleOrder }>
  | Readonly<{ kind: 'created'; order: RaffleOrder; tasks: EnqueuedTask[] }>;

async function partake(d: Deps, req: AccountRequest): Promise<Reply> {
  const now = d.clock();
  const gate = checkActivity(await d.catalog.activity(req.activityId), now);
  if (!gate.ok) return refused(gate);
  const { ds, suffix, group } = d.ctx.dbs.forUser(req.userId);
  for (let attempt = 1; ; attempt++) {
    const orderId = (d.newOrderId ?? newOrderId)();
    let out: PartakeOutcome;
    try {
      out = await group.run({ key: req.userId, run: (tx) => partakeIn(tx, d.ctx.config.timeZone, suffix, req, gate.activity, orderId, now) });
      crashPoint('partake-after-commit');
    } catch (err) {
      // An order id clash (or the one-open-order index) rolled back everything: try again.
      if (attempt < 3 && isUniqueViolation(err)) {
        d.ctx.log.warn({ err, userId: req.userId, attempt }, 'partake hit a unique key, retrying');
        continue;
      }
      throw err;
    }
    switch (out.kind) {
      case 'refused':
        return refused(out.refusal);
      case 'existing':
        return success(orderData(out.order));
      case 'created':
        // Not awaited: the reply need not wait for the event; publishNow never throws, and what it
        // does not publish the cron relay does.
        void publishNow(d.ctx.broker, ds, out.tasks, d.ctx.log);
        d.ctx.log.debug({ userId: req.userId, activityId: req.activityId, orderId: out.order.orderId }, 'raffle order created');
        return success(orderData(out.order));
      default: {
        const _exhaustive: never = out;
        throw new Error(`unknown outcome ${JSON.stringify(_exhaustive)}`);
      }
    }
  }
}

/** One transaction on the user's shard; the account row lock comes first. */
async function partakeIn(tx: Tx, timeZone: string, suffix: string, req: AccountRequest, activity: Activity, orderId: string, now: Date): Promise<PartakeOutcome> {
  const { userId, activityId } = req;
  const period = periodOf(now, timeZone);
  const rows = await store.lockQuota(tx, suffix, userId, activityId, period);
  if (!rows.account) return { kind: 'refused', refusal: { ok: false, code: 'ERR_BIZ_006', info: 'no account for this activity' } };
  if (rows.open) return { kind: 'existing', order: rows.open };
  const decision = decidePartake(rows, now, timeZone);
  if (!decision.ok) return { kind: 'refused', refusal: decision };

  const order: RaffleOrder = { orderId, userId, activityId, activityName: activity.name, strategyId: activity.strategyId, orderTime: now, orderState: 'create' };
  const task = taskRow({
    topic: TOPICS.partakeCreated,
    userId,
    messageId: `partake.created:${orderId}`,
    data: { orderId, userId, activityId, strategyId: activity.strategyId, orderTime: now.toISOString() },
  }, now, holdForFastPath());
  const applied = await store.applyPartake(tx, suffix, period, decision, order, task);
  if (!applied.ok) throw new Error('a surplus changed under the account lock');
  const tasks = applied.taskId ? [enqueuedTask(task, applied.taskId)] : [];
  return { kind: 'created', order, tasks };
}

async function queryAccount(d: Deps, req: AccountRequest): Promise<Reply> {
  const now = d.clock();
  const period = periodOf(now, d.ctx.config.timeZone);
  const rows = await store.readQuota(d.ctx.dbs.forUser(req.userId).ds, req.userId, req.activityId, period);
  return success(quotaAsOf(rows, now, d.ctx.config.timeZone));
}

async function useRaffleOrder(d: Deps, req: UseRequest): Promise<Reply> {
  const { suffix, group } = d.ctx.dbs.forUser(req.userId);
  const now = d.clock();
  return group.run({
    key: req.userId,
    async run(tx) {
      const used = await store.useOrder(tx, suffix, req.userId, req.orderId, now);
      if (used) return success(orderData(used));
      const refusal = refuseUse((await store.findOrder(tx, suffix, req.userId, req.orderId))?.orderState);
      // Someone else's 'create' → 'used' cannot be undone; a row still 'create' here means a racing use won.
      return refused(refusal ?? { ok: false, code: 'ERR_BIZ_009', info: 'raffle order already used' });
    },
  });
}

const orderData = (o: RaffleOrder) => ({
  orderId: o.orderId,
  userId: o.userId,
  activityId: o.activityId,
  activityName: o.activityName,
  strategyId: o.strategyId,
  orderTime: o.orderTime.toISOString(),
  orderState: o.orderState,
});

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '23505';
}
