import { periodOf } from '../../domain/calendar';
import { ENQUEUE_SQL, taskRow } from '../../infra/outbox';
import { skuLockKey } from '../../infra/stock';
import { USE_ORDER_SQL } from '../../workers/partake/order-store';
import { PARTAKE_SQL } from '../../workers/partake/store';
import { RECHARGE_SQL } from '../../workers/recharge/store';
import { ACTIVITY_ID, SKUS, STRATEGY_ID } from '../world';
import { CEILING_USER_BASE, TABLE_STRIDE, ceilingUser } from './ceiling-users';

/**
 * The database ceiling's pgbench scripts, built from the handlers' own statement texts (exported by
 * workers/partake/store.ts, workers/partake/order-store.ts, workers/recharge/store.ts and
 * infra/outbox.ts): each `$n` becomes a pgbench variable, nothing else of the text changes. So the
 * ceiling runs exactly the production statements, and a change of a handler's SQL changes the
 * ceiling with it. Values that vary per transaction are `\set` in the script; the rest are pgbench
 * `-D` definitions (`defines`), sent as parameters like the workers' (prepared or extended mode only).
 */

/** Users per pgbench client; a client only ever touches its own users (as the pipeline callers do). */
export const USERS_PER_CLIENT = 50;
/** Recharge users per split table (shared by all clients, as the pipeline's recharges are). */
const RECHARGE_USERS = 5000;

export { CEILING_USER_BASE, CEILING_USER_PATTERN, ceilingUser } from './ceiling-users';

/** A statement in pgbench's form: `$n` → `:vars[n-1]`; every variable must be used. */
export function pgbenchStatement(text: string, vars: readonly string[]): string {
  const used = new Set<number>();
  const out = text.replace(/\$(\d+)/g, (_, n: string) => {
    const v = vars[Number(n) - 1];
    if (!v) throw new Error(`statement parameter $${n} has no pgbench variable`);
    used.add(Number(n));
    return `:${v}`;
  });
  if (used.size !== vars.length) throw new Error(`statement has ${used.size} parameters, ${vars.length} variables given`);
  return `${out};`;
}

/**
 * Which of `statements` (production texts with `$n` parameters) the script does not hold verbatim,
 * parameters aside (each `$n` may be any pgbench variable). The unit test's check.
 */
export function missingStatements(script: string, statements: readonly string[]): string[] {
  return statements.filter((s) => {
    const pattern = s
      .split(/\$\d+/)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join(':[A-Za-z_][A-Za-z0-9_]*');
    return !new RegExp(`(^|\\n)${pattern};(\\n|$)`).test(script);
  });
}

/** SQL commands of a script (BEGIN and COMMIT included): its round trips, as pgbench waits for each. */
export const statementsOf = (script: string): number => script.split('\n').filter((l) => !l.startsWith('\\') && l.trimEnd().endsWith(';')).length;

const suffixOf = (t: number) => String(t).padStart(3, '0');

/** The production statements a script of `kind` runs for split table t (what the unit test looks for). */
export function productionStatements(kind: 'partake' | 'recharge', t: number): string[] {
  const s = suffixOf(t);
  return kind === 'partake'
    ? [PARTAKE_SQL.lockQuota(s), PARTAKE_SQL.applyPartake(s), USE_ORDER_SQL(s)]
    : [RECHARGE_SQL.lockRequest, RECHARGE_SQL.alreadyHandledSkuLocked(s), RECHARGE_SQL.insertOrderAndCredit(s), ENQUEUE_SQL];
}

/**
 * The partake transaction (lock-and-read, then the deduction with the order and its outbox task)
 * plus the `raffle-order.used` update that the pipeline's callers also send after every partake:
 * 5 statements, 2 transactions. Users have today's and this month's rows in place.
 */
export function partakeScript(t: number): string {
  const s = suffixOf(t);
  return [
    `\\set u ${CEILING_USER_BASE.partake + t * TABLE_STRIDE} + :client_id * ${USERS_PER_CLIENT} + random(0, ${USERS_PER_CLIENT - 1})`,
    '\\set oid random(100000000000, 999999999999)',
    '\\set mid random(1000000000000000000, 9000000000000000000)',
    'BEGIN;',
    pgbenchStatement(PARTAKE_SQL.lockQuota(s), ['u', 'activity', 'day', 'month', 'mid']),
    pgbenchStatement(PARTAKE_SQL.applyPartake(s), ['u', 'activity', 'month', 'zero', 'day', 'zero', 'now', 'oid', 'aname', 'strategy', 'mid', 'u', 'ptopic', 'mid', 'pmsg', 'due']),
    'COMMIT;',
    pgbenchStatement(USE_ORDER_SQL(s), ['u', 'oid', 'now', 'mid']),
    '',
  ].join('\n');
}

/** One new recharge of an unlimited SKU with the limited path's shared SKU lock; `k` names its variables. */
function rechargeBody(t: number, k = ''): { sets: string[]; sql: string[] } {
  const s = suffixOf(t);
  const v = (name: string) => `${name}${k}`;
  return {
    sets: [
      `\\set ${v('u')} ${CEILING_USER_BASE.recharge + t * TABLE_STRIDE} + random(0, ${RECHARGE_USERS - 1})`,
      `\\set ${v('obn')} random(1, 999999999999)`,
      `\\set ${v('lk')} random(-4000000000000000000, 4000000000000000000)`,
      `\\set ${v('oid')} random(100000000000, 999999999999)`,
      `\\set ${v('mid')} random(1000000000000000000, 9000000000000000000)`,
    ],
    sql: [
      pgbenchStatement(RECHARGE_SQL.lockRequest, [v('lk')]),
      pgbenchStatement(RECHARGE_SQL.alreadyHandledSkuLocked(s), [v('u'), v('obn'), 'skulock']),
      pgbenchStatement(RECHARGE_SQL.insertOrderAndCredit(s), [v('u'), 'sku', 'activity', 'aname', 'strategy', v('oid'), 'now', 'tc', 'dc', 'mc', 'paytype', 'payamount', v('obn'), 'day', 'month']),
      pgbenchStatement(ENQUEUE_SQL, [v('u'), 'rtopic', v('mid'), 'rmsg', 'due', 'now']),
    ],
  };
}

/** A new recharge's transaction: request lock, dedupe with the SKU lock, order + credit, outbox task. */
export function rechargeScript(t: number): string {
  const b = rechargeBody(t);
  return [...b.sets, 'BEGIN;', ...b.sql, 'COMMIT;', ''].join('\n');
}

/** `group` recharges in one transaction, each with its own statements (group commit's shape). */
export function groupedRechargeScript(group: number) {
  return (t: number): string => {
    const bodies = Array.from({ length: group }, (_, i) => rechargeBody(t, String(i)));
    return [...bodies.flatMap((b) => b.sets), 'BEGIN;', ...bodies.flatMap((b) => b.sql), 'COMMIT;', ''].join('\n');
  };
}

/**
 * The values that are the same in every transaction of a run (`pgbench -D`): today, this month,
 * the catalog's ids, and the outbox messages as the production code builds them (`taskRow`).
 */
export function ceilingDefines(timeZone: string, at = new Date()): Record<string, string> {
  const { day, month } = periodOf(at, timeZone);
  const hold = 30_000;
  const order = { orderId: '123456789012', userId: ceilingUser('partake', 0, 0), activityId: ACTIVITY_ID, strategyId: STRATEGY_ID, orderTime: at.toISOString() };
  const partake = taskRow({ topic: 'partake.created', userId: order.userId, messageId: `partake.created:${order.orderId}`, data: order }, at, hold);
  const rechargeUser = ceilingUser('recharge', 0, 0);
  const recharge = taskRow(
    {
      topic: 'recharge.completed',
      userId: rechargeUser,
      data: { orderId: '123456789012', userId: rechargeUser, sku: SKUS.unlimitedA, activityId: ACTIVITY_ID, totalCount: 10, dayCount: 3, monthCount: 6, outBusinessNo: '123456789012' },
    },
    at,
    hold,
  );
  return {
    activity: String(ACTIVITY_ID),
    strategy: String(STRATEGY_ID),
    aname: 'Bench raffle',
    day,
    month,
    zero: '0',
    now: at.toISOString(),
    due: partake.due.toISOString(),
    ptopic: 'partake.created',
    pmsg: JSON.stringify(partake.envelope),
    rtopic: 'recharge.completed',
    rmsg: JSON.stringify(recharge.envelope),
    sku: String(SKUS.unlimitedA),
    skulock: skuLockKey(SKUS.plenty),
    tc: '10',
    dc: '3',
    mc: '6',
    paytype: 'free',
    payamount: '0',
  };
}
