import pg from 'pg';
import { Redis } from 'ioredis';
import type { Config } from '../../infra/config';
import { route, splitSuffix } from '../../domain/router';
import { stockKey } from '../../infra/stock';

/**
 * The books checker of the fault suite: given what the test sent, reads every shard (all split
 * tables), the global database, Redis and the events seen on `activity.events`, and says what was
 * lost, what was doubled and which promise of contract §6 is broken.
 */

/** A recharge the test sent (at least once): it must end as exactly one order or one rejection. */
export type RechargeInput = Readonly<{ userId: string; outBusinessNo: string; sku: number }>;
/** One logical partake of a caller (retries included): every reply it got, in order. */
export type PartakeInput = Readonly<{ userId: string; activityId: number; replies: ReadonlyArray<{ code: string; orderId?: string }> }>;
/** An event as the test's durable observer queue saw it. */
export type SeenEvent = Readonly<{ key: string; messageId: string; data: Record<string, any> }>;
/** A message the test expects in `activity.dead-letter` (poison), by AMQP message id. */
export type DeadLetterInput = Readonly<{ messageId: string }>;

export type Inputs = Readonly<{
  recharges?: readonly RechargeInput[];
  partakes?: readonly PartakeInput[];
  poison?: readonly DeadLetterInput[];
  /** Users whose accounts the test filled outside the recorded inputs (none by default). */
  events: readonly SeenEvent[];
  deadLetters: ReadonlyArray<{ messageId?: string; headers: Record<string, any> }>;
  /** A `dead` task this returns true for was meant to die; any other is a violation. */
  deadTaskAllowed?: (task: TaskRow) => boolean;
}>;

export type Books = {
  inputs: number;
  /** Inputs that ended in an effect or a recorded rejection (a dead letter for poison); the rest are lost. */
  effects: number;
  lost: number;
  doubled: number;
  violations: string[];
};

export type TaskRow = { shard: number; id: string; topic: string; message_id: string; state: string; message: any; user_id: string };

type OrderRow = { shard: number; suffix: string; user_id: string; sku: string; activity_id: string; order_id: string; total_count: number; day_count: number; month_count: number; out_business_no: string };
type RaffleRow = { shard: number; suffix: string; user_id: string; activity_id: string; order_id: string; order_time: Date; order_state: string };
type AccountRow = { shard: number; user_id: string; activity_id: string; total_count: number; total_count_surplus: number; day_count: number; day_count_surplus: number; month_count: number; month_count_surplus: number };
type DayRow = { shard: number; user_id: string; activity_id: string; day: string; day_count: number; day_count_surplus: number };
type MonthRow = { shard: number; user_id: string; activity_id: string; month: string; month_count: number; month_count_surplus: number };

const key = (...parts: unknown[]) => parts.map(String).join('\u0000');
const MAX_LISTED = 12;

/** YYYY-MM-DD of `d` in `tz`. */
export function dayIn(tz: string, d = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

export async function checkBooks(config: Config, inputs: Inputs): Promise<Books> {
  const violations: string[] = [];
  const counted = new Map<string, number>();
  const violate = (kind: string, text: string) => {
    const n = (counted.get(kind) ?? 0) + 1;
    counted.set(kind, n);
    if (n <= MAX_LISTED) violations.push(text);
  };

  const db = await readDatabases(config);
  const today = dayIn(config.timeZone);
  const month = today.slice(0, 7);
  let lost = 0;
  let doubled = 0;
  /** Inputs that ended in at least one effect or recorded rejection. */
  let effects = 0;

  // ---- recharges: exactly one order or one recorded rejection per (userId, outBusinessNo)
  const ordersByInput = new Map<string, OrderRow[]>();
  for (const o of db.orders) ordersByInput.set(key(o.user_id, o.out_business_no), [...(ordersByInput.get(key(o.user_id, o.out_business_no)) ?? []), o]);
  const rejectionsByInput = new Map<string, TaskRow[]>();
  for (const t of db.tasks.filter((t) => t.topic === 'recharge.rejected')) {
    const d = t.message?.data ?? {};
    rejectionsByInput.set(key(d.userId, d.outBusinessNo), [...(rejectionsByInput.get(key(d.userId, d.outBusinessNo)) ?? []), t]);
  }
  const sent = new Map<string, RechargeInput>();
  for (const r of inputs.recharges ?? []) sent.set(key(r.userId, r.outBusinessNo), r);
  for (const [k, r] of sent) {
    const orders = ordersByInput.get(k) ?? [];
    const rejections = rejectionsByInput.get(k) ?? [];
    const n = orders.length + rejections.length;
    if (n > 0) effects++;
    if (n === 0) (lost++, violate('lost-recharge', `recharge ${r.userId}/${r.outBusinessNo} (sku ${r.sku}) has neither an order nor a rejection`));
    if (n > 1) (doubled += n - 1, violate('double-recharge', `recharge ${r.userId}/${r.outBusinessNo} has ${orders.length} orders and ${rejections.length} rejections`));
    for (const o of orders) {
      const want = route(o.user_id, config.shardUrls.length, config.shardTableCount);
      if (o.shard !== want.shard || o.suffix !== want.suffix) violate('placement', `order ${o.order_id} of ${o.user_id} in shard ${o.shard} _${o.suffix}, router says shard ${want.shard} _${want.suffix}`);
    }
  }
  for (const [k, orders] of ordersByInput) if (!sent.has(k)) violate('stray-order', `order(s) ${orders.map((o) => o.order_id).join(',')} for ${k.replace('\u0000', '/')} that the test never sent`);

  // ---- events: one message id per effect (redelivery of the same id is at-least-once, allowed)
  const idsPer = new Map<string, Set<string>>();
  const seenIds = new Set<string>();
  for (const e of inputs.events) {
    seenIds.add(e.messageId);
    const k = e.key === 'recharge.completed' || e.key === 'partake.created' ? key(e.key, e.data?.orderId) : e.key === 'recharge.rejected' ? key(e.key, e.data?.userId, e.data?.outBusinessNo) : undefined;
    if (!k) continue;
    idsPer.set(k, (idsPer.get(k) ?? new Set()).add(e.messageId));
  }
  for (const [k, ids] of idsPer) if (ids.size > 1) (doubled += ids.size - 1, violate('double-event', `${k.split('\u0000').join(' ')} published under ${ids.size} message ids`));
  const tasksPer = new Map<string, TaskRow[]>();
  for (const t of db.tasks) {
    const d = t.message?.data ?? {};
    const k = t.topic === 'recharge.completed' || t.topic === 'partake.created' ? key(t.topic, d.orderId) : t.topic === 'recharge.rejected' ? key(t.topic, d.userId, d.outBusinessNo) : undefined;
    if (k) tasksPer.set(k, [...(tasksPer.get(k) ?? []), t]);
    if (t.message?.id !== undefined && t.message.id !== t.message_id) violate('envelope-id', `task ${t.shard}/${t.id}: envelope id ${t.message.id} ≠ message_id ${t.message_id}`);
    if (t.state === 'create' || t.state === 'fail') violate('task-pending', `task ${t.shard}/${t.id} (${t.topic}) still ${t.state} once idle`);
    if (t.state === 'dead' && !inputs.deadTaskAllowed?.(t)) violate('task-dead', `task ${t.shard}/${t.id} (${t.topic}) is dead`);
    if (t.state === 'completed' && !seenIds.has(t.message_id)) (lost++, violate('lost-event', `task ${t.shard}/${t.id} (${t.topic} ${t.message_id}) completed but its event never arrived`));
  }
  for (const [k, ts] of tasksPer) if (ts.length > 1) (doubled += ts.length - 1, violate('double-task', `${k.split('\u0000').join(' ')} has ${ts.length} outbox tasks`));
  for (const o of db.orders) if (!tasksPer.has(key('recharge.completed', o.order_id))) (lost++, violate('no-task', `order ${o.order_id} has no recharge.completed task`));
  for (const r of db.raffle) if (!tasksPer.has(key('partake.created', r.order_id))) (lost++, violate('no-task', `raffle order ${r.order_id} has no partake.created task`));

  // ---- partakes: every success reply names a committed order; retries of one call agree; no orphan orders
  const raffleById = new Map(db.raffle.map((r) => [r.order_id, r]));
  const replied = new Set<string>();
  for (const p of inputs.partakes ?? []) {
    const ok = p.replies.filter((r) => r.code === '0000');
    if (!p.replies.length) (lost++, violate('partake-no-reply', `partake of ${p.userId} never got a reply`));
    const ids = new Set(ok.map((r) => String(r.orderId)));
    if (p.replies.length && [...ids].every((id) => raffleById.has(id))) effects++;
    if (ids.size > 1) (doubled += ids.size - 1, violate('partake-retry-double', `one partake call of ${p.userId} got ${ids.size} different orders: ${[...ids].join(', ')}`));
    for (const id of ids) {
      replied.add(id);
      const row = raffleById.get(id);
      if (!row) (lost++, violate('partake-lost', `partake reply order ${id} of ${p.userId} is not in the database`));
      else if (row.user_id !== p.userId) violate('partake-wrong-user', `order ${id} belongs to ${row.user_id}, replied to ${p.userId}`);
    }
  }
  if (inputs.partakes) {
    for (const r of db.raffle) if (!replied.has(r.order_id)) (doubled++, violate('partake-orphan', `raffle order ${r.order_id} of ${r.user_id} was never returned to a caller`));
  }
  const openPer = new Map<string, number>();
  for (const r of db.raffle) if (r.order_state === 'create') openPer.set(key(r.user_id, r.activity_id), (openPer.get(key(r.user_id, r.activity_id)) ?? 0) + 1);
  for (const [k, n] of openPer) if (n > 1) (doubled += n - 1, violate('two-open', `${k.replace('\u0000', '/')} has ${n} raffle orders in state create`));

  // ---- accounts: the ledger adds up; surpluses ≥ 0; day / month mirrors
  const sums = new Map<string, { t: number; d: number; m: number }>();
  for (const o of db.orders) {
    const s = sums.get(key(o.user_id, o.activity_id)) ?? { t: 0, d: 0, m: 0 };
    (s.t += o.total_count), (s.d += o.day_count), (s.m += o.month_count);
    sums.set(key(o.user_id, o.activity_id), s);
  }
  const raffles = new Map<string, RaffleRow[]>();
  for (const r of db.raffle) raffles.set(key(r.user_id, r.activity_id), [...(raffles.get(key(r.user_id, r.activity_id)) ?? []), r]);
  const accounts = new Map(db.accounts.map((a) => [key(a.user_id, a.activity_id), a]));
  for (const [k, s] of sums) if (!accounts.has(k)) (lost++, violate('no-account', `orders credited to ${k.replace('\u0000', '/')} but no account row`));
  for (const [k, a] of accounts) {
    const s = sums.get(k) ?? { t: 0, d: 0, m: 0 };
    const used = raffles.get(k)?.length ?? 0;
    const who = `account ${a.user_id}/${a.activity_id}`;
    if (a.total_count !== s.t) violate('account-total', `${who}: total_count ${a.total_count} ≠ Σ orders ${s.t}`);
    if (a.day_count !== s.d) violate('account-day', `${who}: day_count ${a.day_count} ≠ Σ orders ${s.d}`);
    if (a.month_count !== s.m) violate('account-month', `${who}: month_count ${a.month_count} ≠ Σ orders ${s.m}`);
    if (a.total_count_surplus !== a.total_count - used) violate('account-surplus', `${who}: total_count_surplus ${a.total_count_surplus} ≠ total ${a.total_count} − ${used} raffle orders`);
    for (const f of ['total_count_surplus', 'day_count_surplus', 'month_count_surplus'] as const) if (a[f] < 0) violate('negative', `${who}: ${f} ${a[f]} < 0`);
  }
  for (const d of db.days) {
    const who = `day row ${d.user_id}/${d.activity_id}/${d.day}`;
    if (d.day_count_surplus < 0) violate('negative', `${who}: surplus ${d.day_count_surplus} < 0`);
    const usedThatDay = (raffles.get(key(d.user_id, d.activity_id)) ?? []).filter((r) => dayIn(config.timeZone, r.order_time) === d.day).length;
    if (d.day_count - d.day_count_surplus !== usedThatDay) violate('day-row', `${who}: count ${d.day_count} − surplus ${d.day_count_surplus} ≠ ${usedThatDay} raffle orders that day`);
    const a = accounts.get(key(d.user_id, d.activity_id));
    if (d.day === today && a && a.day_count_surplus !== d.day_count_surplus) violate('day-mirror', `${who}: surplus ${d.day_count_surplus} ≠ account day_count_surplus ${a.day_count_surplus}`);
  }
  for (const m of db.months) {
    const who = `month row ${m.user_id}/${m.activity_id}/${m.month}`;
    if (m.month_count_surplus < 0) violate('negative', `${who}: surplus ${m.month_count_surplus} < 0`);
    const usedThatMonth = (raffles.get(key(m.user_id, m.activity_id)) ?? []).filter((r) => dayIn(config.timeZone, r.order_time).slice(0, 7) === m.month).length;
    if (m.month_count - m.month_count_surplus !== usedThatMonth) violate('month-row', `${who}: count ${m.month_count} − surplus ${m.month_count_surplus} ≠ ${usedThatMonth} raffle orders that month`);
    const a = accounts.get(key(m.user_id, m.activity_id));
    if (m.month === month && a && a.month_count_surplus !== m.month_count_surplus) violate('month-mirror', `${who}: surplus ${m.month_count_surplus} ≠ account month_count_surplus ${a.month_count_surplus}`);
  }

  // ---- stock: never oversold; database surplus and live counter = stock − committed orders
  const perSku = new Map<number, number>();
  for (const o of db.orders) perSku.set(Number(o.sku), (perSku.get(Number(o.sku)) ?? 0) + 1);
  for (const s of db.skus) {
    if (s.stock_count < 0) continue;
    const sold = perSku.get(s.sku) ?? 0;
    if (sold > s.stock_count) (doubled += sold - s.stock_count, violate('oversold', `sku ${s.sku}: ${sold} orders for stock ${s.stock_count}`));
    if (s.stock_count_surplus !== Math.max(0, s.stock_count - sold)) violate('sku-surplus', `sku ${s.sku}: stock_count_surplus ${s.stock_count_surplus} ≠ stock ${s.stock_count} − ${sold} orders`);
    const live = db.redisStock.get(s.sku);
    if (live !== undefined && live !== Math.max(0, s.stock_count - sold)) violate('redis-stock', `sku ${s.sku}: Redis counter ${live} ≠ stock ${s.stock_count} − ${sold} orders`);
  }

  // ---- poison: in the dead-letter queue with a reason
  for (const p of inputs.poison ?? []) {
    const d = inputs.deadLetters.find((x) => x.messageId === p.messageId);
    if (!d) (lost++, violate('poison-missing', `poison message ${p.messageId} is not in activity.dead-letter`));
    else effects++;
  }
  const poisonIds = new Set((inputs.poison ?? []).map((p) => p.messageId));
  const innocent = inputs.deadLetters.filter((d) => !d.messageId || !poisonIds.has(d.messageId));
  if (innocent.length) violate('dead-letter', `${innocent.length} other message(s) dead-lettered, e.g. ${innocent[0]!.messageId}: ${String(innocent[0]!.headers?.['x-error'] ?? JSON.stringify(innocent[0]!.headers?.['x-death']?.[0]?.reason ?? ''))}`);

  for (const [kind, n] of counted) if (n > MAX_LISTED) violations.push(`… ${n - MAX_LISTED} more ${kind}`);
  const inputsN = sent.size + (inputs.partakes?.length ?? 0) + (inputs.poison?.length ?? 0);
  return { inputs: inputsN, effects, lost, doubled, violations };
}

type Snapshot = {
  orders: OrderRow[];
  raffle: RaffleRow[];
  accounts: AccountRow[];
  days: DayRow[];
  months: MonthRow[];
  tasks: TaskRow[];
  skus: Array<{ sku: number; stock_count: number; stock_count_surplus: number }>;
  redisStock: Map<number, number>;
};

async function readDatabases(config: Config): Promise<Snapshot> {
  const snap: Snapshot = { orders: [], raffle: [], accounts: [], days: [], months: [], tasks: [], skus: [], redisStock: new Map() };
  const client = async <T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url, application_name: 'fault-books' });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  const suffixes = Array.from({ length: config.shardTableCount }, (_, t) => splitSuffix(t));
  for (const [i, url] of config.shardUrls.entries()) {
    const shard = i + 1;
    await client(url, async (c) => {
      for (const s of suffixes) {
        for (const r of (await c.query(`SELECT user_id, sku::text, activity_id::text, order_id, total_count, day_count, month_count, out_business_no FROM raffle_activity_order_${s}`)).rows) snap.orders.push({ ...r, shard, suffix: s });
        for (const r of (await c.query(`SELECT user_id, activity_id::text, order_id, order_time, order_state FROM user_raffle_order_${s}`)).rows) snap.raffle.push({ ...r, shard, suffix: s });
      }
      for (const r of (await c.query(`SELECT user_id, activity_id::text, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus FROM raffle_activity_account`)).rows) snap.accounts.push({ ...r, shard });
      for (const r of (await c.query(`SELECT user_id, activity_id::text, day, day_count, day_count_surplus FROM raffle_activity_account_day`)).rows) snap.days.push({ ...r, shard });
      for (const r of (await c.query(`SELECT user_id, activity_id::text, month, month_count, month_count_surplus FROM raffle_activity_account_month`)).rows) snap.months.push({ ...r, shard });
      for (const r of (await c.query(`SELECT id::text, user_id, topic, message_id, state, message FROM task`)).rows) snap.tasks.push({ ...r, shard });
    });
  }
  await client(config.databaseUrl, async (c) => {
    snap.skus = (await c.query(`SELECT sku::int AS sku, stock_count, stock_count_surplus FROM raffle_activity_sku`)).rows;
  });
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    for (const s of snap.skus) {
      const v = await redis.get(stockKey(s.sku));
      if (v !== null) snap.redisStock.set(s.sku, Number(v));
    }
  } finally {
    redis.disconnect();
  }
  return snap;
}

/** A one-line summary for logs. */
export function describe(b: Books): string {
  return `${b.inputs} inputs, ${b.effects} effects, ${b.lost} lost, ${b.doubled} doubled${b.violations.length ? `; ${b.violations.length} violation(s): ${b.violations.slice(0, 4).join('; ')}` : ''}`;
}
