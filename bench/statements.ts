import { catalogReader } from '../infra/catalog-read';
import type { Tx } from '../infra/db';
import * as inbox from '../infra/inbox';
import * as outbox from '../infra/outbox';
import { readHistory } from '../workers/partake/history-store';
import * as orders from '../workers/partake/order-store';
import * as partake from '../workers/partake/store';
import * as recharge from '../workers/recharge/store';

/**
 * Every shard statement's text, taken from the store functions themselves through a transaction
 * that records instead of sending: what bench/scenarios/generic-plans.ts explains on filled tables
 * and test/int/plans.int.test.ts on new ones.
 */

/** Statements that read a whole index on purpose: retention walks the primary key from the oldest task, the gauges count open tasks. */
export const WHOLE_INDEX_READS: ReadonlySet<string> = new Set(['retention: purge', 'gauges: open tasks', 'gauges: outbox lag']);

/** The shard statements' texts, as the store functions send them (split tables `suffixes`): the set-based ones, then the lone units' and the jobs' (and the names of any that sent nothing). */
export async function statementTexts(suffixes: readonly string[]): Promise<Recorded> {
  const { recorder, out, as, each } = recording();
  const now = new Date();
  out.push(['partake: lock and read', partake.PARTAKE_SQL.lockQuotas(suffixes)], ['partake: write', partake.PARTAKE_SQL.applyPartakes(suffixes)]);
  await as('use', () => orders.useOrders(recorder, suffixes, [{ suffix: '000', userId: 'u', orderId: 'o', now, requestId: 'r' }]));
  await as('recharge: duplicate check', () => recharge.alreadyHandledAll(recorder, suffixes, [{ suffix: '000', userId: 'u', outBusinessNo: 'b' }]));
  const order = {
    orderId: 'o',
    userId: 'u',
    sku: 1,
    activityId: 1,
    activityName: 'a',
    strategyId: 1,
    orderTime: now,
    totalCount: 1,
    dayCount: 1,
    monthCount: 1,
    payType: 'free',
    payAmount: '0',
    outBusinessNo: 'b',
  } as const;
  await as('recharge: credit', () => recharge.insertOrdersAndCredit(recorder, suffixes, [{ suffix: '000', order, day: '2026-12-06', month: '2026-12' }]));
  const rejection = { userId: 'u', sku: 1, outBusinessNo: 'b', code: 'ERR_BIZ_003', info: 'x', messageId: 'm', time: now } as const;
  await as('recharge: refusals', () => recharge.insertRejections(recorder, suffixes, [{ suffix: '000', rejection }]));
  await as('outbox: tasks', () => outbox.insertTasks(recorder, [outbox.taskRow({ topic: 'recharge.completed', userId: 'u', data: {} }, now)]));
  // The lone units' statements and the jobs' (expiry, history, relay, retention, gauges): whatever
  // argument they get, only the text they send is kept (a value that is not what they expect may
  // make them throw afterwards, or before: a statement not recorded fails the check).
  const x = anything();
  const lone: Array<[string, () => Promise<unknown>]> = [
    ['partake alone: lock and read', () => partake.lockQuota(recorder, '000', 'u', 1, x, 'r')],
    ['partake alone: write', () => partake.applyPartake(recorder, '000', x, x, 'r', x)],
    ['query: quota', () => partake.readQuota(recorder as never, 'u', 1, x)],
    ['use alone', () => orders.useOrder(recorder, '000', 'u', 'o', 'r', now)],
    ['use: the order as it is', () => orders.findOrder(recorder, '000', 'u', 'o')],
    ['cancel: lock', () => orders.lockForCancel(recorder, '000', 'u', 'o')],
    ['cancel: write', () => orders.applyCancel(recorder, '000', x, 'r', x, now)],
    ['expiry: due orders', () => orders.expiredOrders(recorder as never, '000', 1, now, 100)],
    ['history', () => readHistory(recorder as never, '000', x)],
    ['recharge alone: duplicate check', () => recharge.alreadyHandled(recorder, '000', 'u', 'b', 'k')],
    ['recharge alone: refusal', () => recharge.insertRejection(recorder, '000', rejection)],
    ['recharge alone: credit', () => recharge.insertOrderAndCredit(recorder, '000', order, '2026-12-06', '2026-12')],
    ['relay: claim due', () => outbox.claimDue(recorder as never, { batchSize: 100, leaseMs: 5000 })],
    ['relay: claim unheld', () => outbox.claimUnheld(recorder as never, ['1'], 5000)],
    ['relay: mark completed', () => outbox.markCompleted(recorder as never, ['1'])],
    ['relay: fail', () => outbox.failTask(recorder as never, '1', 'e', x)],
    ['relay: release', () => outbox.releaseTask(recorder as never, '1', 'e')],
    ['retention: purge', () => outbox.purgeCompleted(recorder as never, 60, 1000)],
    ['gauges: open tasks', () => outbox.countOpenTasks(recorder as never)],
    ['gauges: outbox lag', () => outbox.outboxLagSeconds(recorder as never)],
  ];
  return each(lone);
}

/**
 * The global database's statements that the workers send (the inbox of processed messages, the only
 * global table that grows with traffic, and the catalog reads), recorded as `statementTexts` does.
 */
export async function globalStatementTexts(): Promise<Recorded> {
  const { recorder, each } = recording();
  const catalog = catalogReader(recorder as never, { ttlMs: 0 });
  return each([
    ['inbox: first delivery', () => inbox.firstDelivery(recorder, 'c', 'm')],
    ['inbox: purge', () => inbox.purgeProcessed(recorder as never, 60, 1000)],
    ['catalog: activity', () => catalog.activity(1)],
    ['catalog: sku', () => catalog.sku(1)],
    ['catalog: rebates', () => catalog.rebates('b')],
    ['catalog: expiring activities', () => catalog.expiring()],
  ]);
}

/** Statement texts by name, and the names of the calls that sent none. */
type Recorded = { texts: Array<[string, string]>; missing: string[] };

/**
 * A transaction that records the text of every statement sent on it, under the name of the call
 * running (`as`); `each` runs calls in turn (whatever they throw afterwards) and adds those that
 * sent nothing to `missing`: a statement not recorded fails the check.
 */
function recording() {
  const out: Array<[string, string]> = [];
  const missing: string[] = [];
  let name = '';
  const recorder = { db: { scope: 'plans' }, client: { query: async (q: { text: string }) => (out.push([name, q.text]), { rows: [], rowCount: 0 }) } } as unknown as Tx;
  const as = async (n: string, f: () => Promise<unknown>) => {
    name = n;
    await f();
  };
  const each = async (calls: ReadonlyArray<[string, () => Promise<unknown>]>): Promise<Recorded> => {
    for (const [n, f] of calls) {
      const before = out.length;
      await as(n, () => f().catch(() => undefined));
      if (out.length === before) missing.push(n);
    }
    return { texts: out, missing };
  };
  return { recorder, out, as, each };
}

/** A value with every property (itself, callable): for arguments whose content no statement text depends on. */
function anything(): never {
  const f: object = new Proxy(() => f, { get: (_, k) => (k === Symbol.toPrimitive ? () => 1 : f) });
  return f as never;
}
