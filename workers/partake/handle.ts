import { periodOf } from '../../domain/calendar';
import type { Activity } from '../../domain/catalog';
import { checkActivity, decidePartake, quotaAsOf, type PartakeDecision } from '../../domain/partake';
import type { RaffleOrder } from '../../domain/raffle-order';
import { requestReply, type Broker, type Handler, type Reply } from '../../infra/amqp';
import type { CatalogReader } from '../../infra/catalog-read';
import { crashPoint } from '../../infra/crash';
import type { Tx } from '../../infra/db';
import { batched, type Batch } from '../../infra/group-commit';
import type { Clock } from '../../infra/ids';
import type { Logger } from '../../infra/log';
import { enqueuedTask, type EnqueuedTask } from '../../infra/outbox';
import type { Databases, UserShard } from '../../infra/shards';
import type { OutboxPort } from '../outbox-port';
import { PARTAKE_QUEUE, ACCOUNT_QUERY_QUEUE, parseAccountRequest, parsePartakeRequest, type AccountRequest, type PartakeRequest } from './message';
import * as store from './store';

/** What the partake worker's handlers and jobs use, and nothing more. */
export type Deps = Readonly<{
  log: Logger;
  /** Replies only; events go through `outbox`. */
  broker: Pick<Broker, 'reply'>;
  outbox: OutboxPort;
  dbs: Pick<Databases, 'forUser' | 'shards' | 'suffixes'>;
  catalog: CatalogReader;
  timeZone: string;
  clock: Clock;
  newOrderId: () => string;
}>;

export const success = (data: unknown): Reply => ({ code: '0000', info: 'success', data });
export const refused = (r: Readonly<{ code: string; info: string }>): Reply => ({ code: r.code, info: r.info });

export function partakeHandler(d: Deps): Handler {
  const batch = partakeBatch(d);
  return requestReply(d.broker, { queue: PARTAKE_QUEUE, parse: parsePartakeRequest, run: (req) => partake(d, batch, req), replyRequired: true });
}

export const accountQueryHandler = (d: Deps): Handler => requestReply(d.broker, { queue: ACCOUNT_QUERY_QUEUE, parse: parseAccountRequest, run: (req) => queryAccount(d, req), replyRequired: true });

type Partaken = Readonly<{ decision: PartakeDecision; tasks: EnqueuedTask[] }>;

async function partake(d: Deps, batch: Batch<PartakeInput, Partaken>, req: PartakeRequest): Promise<Reply> {
  crashPoint(`partake-message:${req.userId}`);
  const now = d.clock();
  const gate = checkActivity(await d.catalog.activity(req.activityId), now);
  if (!gate.ok) return refused(gate);
  const db = d.dbs.forUser(req.userId);
  for (let attempt = 1; ; attempt++) {
    let out: Partaken;
    try {
      const input = { db, req, activity: gate.activity, now };
      out = await db.group.run({ key: req.userId, run: (tx) => partakeIn(d, tx, input), batch: batched(batch, input) });
      crashPoint('partake-after-commit');
    } catch (err) {
      // An order id clash (or the one-open-order index) rolled back everything: try again.
      if (attempt < 3 && isUniqueViolation(err)) {
        d.log.warn({ err, userId: req.userId, attempt }, 'partake hit a unique key, retrying');
        continue;
      }
      throw err;
    }
    const { decision } = out;
    switch (decision.kind) {
      case 'refused':
        return refused(decision.refusal);
      case 'existing':
        return success(orderData(decision.order));
      case 'create':
        // Not awaited: the reply need not wait for the event; publishNow never throws, and what it
        // does not publish the cron relay does.
        void d.outbox.publish(db, out.tasks);
        d.log.debug({ userId: req.userId, activityId: req.activityId, orderId: decision.order.orderId }, 'raffle order created');
        return success(orderData(decision.order));
      default: {
        const _exhaustive: never = decision;
        throw new Error(`unknown decision ${JSON.stringify(_exhaustive)}`);
      }
    }
  }
}

/** What one partake's transaction work needs. */
type PartakeInput = Readonly<{ db: UserShard; req: PartakeRequest; activity: Activity; now: Date }>;

/** One transaction on the user's shard; the account row lock comes first. */
async function partakeIn(d: Deps, tx: Tx, { db, req, activity, now }: PartakeInput): Promise<Partaken> {
  const { suffix } = db;
  const rows = await store.lockQuota(tx, suffix, req.userId, req.activityId, periodOf(now, d.timeZone), req.requestId);
  const decision = decidePartake(rows, activity, req, d.newOrderId(), now, d.timeZone);
  if (decision.kind !== 'create') return { decision, tasks: [] };
  const task = await d.outbox.hold(db, decision.events[0], now);
  const applied = await store.applyPartake(tx, suffix, decision.deduction, decision.order, req.requestId, task);
  if (!applied.ok) throw new Error('a surplus changed under the account lock');
  return { decision, tasks: applied.taskId ? [enqueuedTask(task, applied.taskId)] : [] };
}

/**
 * `partakeIn` for a group of partakes on one shard database (docs/BENCHMARKS.md, hot-path row 20):
 * one statement locks and reads every user's rows, each partake is decided as alone, and one
 * statement writes those that create an order. Same rows, same results, two round trips in all.
 */
function partakeBatch(d: Deps): Batch<PartakeInput, Partaken> {
  return {
    async run(tx, members) {
      const inputs = members.map((m) => m.input);
      const { suffixes } = inputs[0]!.db;
      const locked = await store.lockQuotas(
        tx,
        suffixes,
        inputs.map(({ db, req, now }) => ({ suffix: db.suffix, userId: req.userId, activityId: req.activityId, period: periodOf(now, d.timeZone), requestId: req.requestId })),
      );
      const decisions = inputs.map(({ req, activity, now }, i) => decidePartake(locked[i]!, activity, req, d.newOrderId(), now, d.timeZone));
      const creates = decisions.flatMap((decision, i) => (decision.kind === 'create' ? [{ i, decision }] : []));
      const writes = await Promise.all(
        creates.map(async ({ i, decision }) => {
          const { db, req, now } = inputs[i]!;
          const task = await members[i]!.within(() => d.outbox.hold(db, decision.events[0], now));
          return { suffix: db.suffix, deduction: decision.deduction, order: decision.order, requestId: req.requestId, task };
        }),
      );
      const applied = writes.length ? await store.applyPartakes(tx, suffixes, writes) : [];
      if (applied.some((a) => !a.ok)) throw new Error('a surplus changed under the account lock');
      const tasks = new Map(creates.map(({ i }, k) => [i, applied[k]!.taskId ? [enqueuedTask(writes[k]!.task, applied[k]!.taskId!)] : []]));
      return decisions.map((decision, i) => ({ decision, tasks: tasks.get(i) ?? [] }));
    },
  };
}

async function queryAccount(d: Deps, req: AccountRequest): Promise<Reply> {
  const now = d.clock();
  const rows = await store.readQuota(d.dbs.forUser(req.userId).ds, req.userId, req.activityId, periodOf(now, d.timeZone));
  return success(quotaAsOf(rows, now, d.timeZone));
}

export const orderData = (o: RaffleOrder) => ({
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
