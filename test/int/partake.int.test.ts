import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { periodOf } from '../../domain/calendar';
import { sql } from '../../infra/db';
import { openDatabases, type Databases } from '../../infra/shards';
import { QUEUES } from '../../infra/topology';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedAccount, seedActivity, seedDayRow, seedMonthRow } from '../support/seed';
import { startWorker, type Running } from '../support/workers';

const OPEN = 100301;
const CLOSED = 100302;
const NOT_STARTED = 100303;
const ENDED = 100304;

let env: TestEnv;
let worker: Running;
let client: TestClient;
let dbs: Databases;

test.before(async () => {
  env = await createTestEnv();
  dbs = await openDatabases(env.config, { poolSize: 3, name: 'test' });
  const activities: Array<[number, string, string, string]> = [
    [OPEN, 'open', '2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z'],
    [CLOSED, 'close', '2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z'],
    [NOT_STARTED, 'open', '2090-01-01T00:00:00Z', '2099-01-01T00:00:00Z'],
    [ENDED, 'open', '2020-01-01T00:00:00Z', '2021-01-01T00:00:00Z'],
  ];
  for (const [id, state, begin, end] of activities) await seedActivity(dbs.global, { activityId: id, state: state as 'open' | 'close', begin, end });
  worker = await startWorker('partake', env.config);
  client = await connectClient(env.config.amqpUrl);
});

test.after(async () => {
  await client?.close();
  await worker?.stop();
  await dbs?.close();
  await env?.cleanup();
});

type Given = { total?: number; totalSurplus?: number; day?: number; month?: number; dayRow?: [number, number]; monthRow?: [number, number] };

/** An account as a recharge would leave it, with today's / this month's rows if asked for. */
async function givenAccount(userId: string, g: Given = {}, activityId = OPEN): Promise<void> {
  const p = periodOf(new Date(), 'UTC');
  await seedAccount(dbs, userId, activityId, { total: g.total, totalSurplus: g.totalSurplus, day: g.day, daySurplus: g.dayRow?.[1], month: g.month, monthSurplus: g.monthRow?.[1] });
  if (g.dayRow) await seedDayRow(dbs, userId, activityId, p.day, ...g.dayRow);
  if (g.monthRow) await seedMonthRow(dbs, userId, activityId, p.month, ...g.monthRow);
}

/** Everything partake may touch for one user, found by scanning every shard and split table. */
async function stateOf(userId: string, activityId = OPEN) {
  const p = periodOf(new Date(), 'UTC');
  const { ds } = dbs.forUser(userId);
  const account = (await sql<any>(ds, 'SELECT total_count_surplus, day_count_surplus, month_count_surplus FROM raffle_activity_account WHERE user_id = $1 AND activity_id = $2', [userId, activityId]))
    .rows[0];
  const day = (await sql<any>(ds, 'SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = $1 AND activity_id = $2 AND day = $3', [userId, activityId, p.day])).rows[0];
  const month = (await sql<any>(ds, 'SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = $1 AND activity_id = $2 AND month = $3', [userId, activityId, p.month]))
    .rows[0];
  const orders: Array<{ shard: number; suffix: string; order_id: string; order_state: string; activity_name: string; strategy_id: string }> = [];
  const tasks: any[] = [];
  for (const s of dbs.shards) {
    for (const suffix of dbs.suffixes) {
      const { rows } = await sql<any>(s.ds, `SELECT order_id, order_state, activity_name, strategy_id FROM user_raffle_order_${suffix} WHERE user_id = $1 ORDER BY id`, [userId]);
      orders.push(...rows.map((r) => ({ shard: s.shard, suffix, ...r })));
    }
    tasks.push(...(await sql<any>(s.ds, 'SELECT topic, message_id, message, state FROM task WHERE user_id = $1 ORDER BY id', [userId])).rows);
  }
  return { account, day, month, orders, tasks };
}

const partake = (userId: string, activityId = OPEN, timeoutMs = 10_000) => client.rpc(QUEUES.partake, { userId, activityId }, { timeoutMs }).then((r) => r.body);
const query = (userId: string, activityId = OPEN) => client.rpc(QUEUES.accountQuery, { userId, activityId }).then((r) => r.body);
const use = (userId: string, orderId: string) => client.rpc(QUEUES.raffleOrderUsed, { userId, orderId }).then((r) => r.body);

test('success: reply shape, order in the routed shard and split table, rows, mirrors and outbox task', async () => {
  const userId = 'xiaofuge'; // shard 1, _001 (contract §3)
  await givenAccount(userId);
  assert.equal((await query(userId)).data, { totalCount: 10, totalCountSurplus: 10, dayCount: 3, dayCountSurplus: 3, monthCount: 6, monthCountSurplus: 6 });

  const before = Date.now();
  const r = await partake(userId);
  assert.is(r.code, '0000');
  assert.is(r.info, 'success');
  assert.equal(Object.keys(r.data).sort(), ['activityId', 'activityName', 'orderId', 'orderState', 'orderTime', 'strategyId', 'userId']);
  assert.ok(/^\d{12}$/.test(r.data.orderId), r.data.orderId);
  assert.equal({ ...r.data, orderId: 'x', orderTime: 'x' }, { orderId: 'x', userId, activityId: OPEN, activityName: `activity ${OPEN}`, strategyId: 100006, orderTime: 'x', orderState: 'create' });
  assert.ok(Math.abs(Date.parse(r.data.orderTime) - before) < 10_000);

  const s = await stateOf(userId);
  assert.equal(
    s.orders.map((o) => [o.shard, o.suffix, o.order_id, o.order_state, o.activity_name, Number(o.strategy_id)]),
    [[1, '001', r.data.orderId, 'create', `activity ${OPEN}`, 100006]],
  );
  assert.equal(s.account, { total_count_surplus: 9, day_count_surplus: 2, month_count_surplus: 5 });
  assert.equal(s.day, { day_count: 3, day_count_surplus: 2 });
  assert.equal(s.month, { month_count: 6, month_count_surplus: 5 });
  assert.is(s.tasks.length, 1);
  assert.is(s.tasks[0].topic, 'partake.created');
  assert.equal(s.tasks[0].message.data, { orderId: r.data.orderId, userId, activityId: OPEN, strategyId: 100006, orderTime: r.data.orderTime });
  assert.is(s.tasks[0].message.id, s.tasks[0].message_id);
  assert.equal((await query(userId)).data, { totalCount: 10, totalCountSurplus: 9, dayCount: 3, dayCountSurplus: 2, monthCount: 6, monthCountSurplus: 5 });

  // While the order is unused, partake returns it and deducts nothing.
  const again = await partake(userId);
  assert.equal(again, r);
  const s2 = await stateOf(userId);
  assert.equal([s2.account, s2.day, s2.month, s2.orders.length, s2.tasks.length], [s.account, s.day, s.month, 1, 1]);
});

test('query: zeros without an account', async () => {
  const r = await query('nobody-here');
  assert.equal(r, { code: '0000', info: 'success', data: { totalCount: 0, totalCountSurplus: 0, dayCount: 0, dayCountSurplus: 0, monthCount: 0, monthCountSurplus: 0 } });
});

test('50 concurrent partakes by one user: one order id in every reply, quota down by exactly one', async () => {
  const userId = 'user001'; // shard 2, _000
  await givenAccount(userId);
  const replies = await Promise.all(Array.from({ length: 50 }, () => partake(userId, OPEN, 30_000)));
  assert.equal([...new Set(replies.map((r) => r.code))], ['0000']);
  assert.is(new Set(replies.map((r) => r.data.orderId)).size, 1);
  const s = await stateOf(userId);
  assert.equal(
    s.orders.map((o) => [o.shard, o.suffix, o.order_id]),
    [[2, '000', replies[0].data.orderId]],
  );
  assert.equal(s.account, { total_count_surplus: 9, day_count_surplus: 2, month_count_surplus: 5 });
  assert.equal([s.day.day_count_surplus, s.month.month_count_surplus, s.tasks.length], [2, 5, 1]);
});

test('quota exhausted in each dimension gives its code and changes nothing', async () => {
  const cases: Array<[string, Given | undefined, string]> = [
    ['ex-none', undefined, 'ERR_BIZ_006'],
    ['ex-total', { total: 10, totalSurplus: 0, dayRow: [3, 1], monthRow: [6, 1] }, 'ERR_BIZ_006'],
    ['ex-month', { monthRow: [6, 0], dayRow: [3, 3] }, 'ERR_BIZ_007'],
    ['ex-month-allowance', { month: 0 }, 'ERR_BIZ_007'],
    ['ex-day', { dayRow: [3, 0], monthRow: [6, 2] }, 'ERR_BIZ_008'],
    ['ex-day-allowance', { day: 0 }, 'ERR_BIZ_008'],
  ];
  for (const [userId, given, code] of cases) {
    if (given) await givenAccount(userId, given);
    const before = await stateOf(userId);
    const r = await partake(userId);
    assert.is(r.code, code, userId);
    assert.ok(typeof r.info === 'string' && r.info && r.data === undefined);
    assert.equal(await stateOf(userId), before, userId);
  }
});

test('alternating partake and raffle-order.used with total 10: exactly 10 orders, then ERR_BIZ_006', async () => {
  const userId = 'user003'; // shard 1, _002
  await givenAccount(userId, { total: 10, day: 10, month: 10 });
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await partake(userId);
    assert.is(r.code, '0000');
    ids.push(r.data.orderId);
    const u = await use(userId, r.data.orderId);
    assert.is(u.code, '0000');
    assert.equal(u.data, { ...r.data, orderState: 'used' });
  }
  assert.is(new Set(ids).size, 10);
  assert.is((await partake(userId)).code, 'ERR_BIZ_006');
  const s = await stateOf(userId);
  assert.equal(
    s.orders.map((o) => o.order_state),
    Array(10).fill('used'),
  );
  assert.ok(s.orders.every((o) => o.shard === 1 && o.suffix === '002'));
  assert.equal(s.account, { total_count_surplus: 0, day_count_surplus: 0, month_count_surplus: 0 });
  assert.equal([s.day.day_count_surplus, s.month.month_count_surplus, s.tasks.length], [0, 0, 10]);

  assert.is((await use(userId, ids[0]!)).code, 'ERR_BIZ_009');
  assert.is((await use(userId, '999999999999')).code, 'ERR_BIZ_010');
  assert.is((await use('someone-else', ids[1]!)).code, 'ERR_BIZ_010');
});

test('a partake delivered again with the same message id answers its own order, also once used; a new id spends a new chance', async () => {
  const userId = 'user-retry-same-id';
  await givenAccount(userId, { total: 3, day: 3, month: 3 });
  const again = (messageId: string) => client.rpc(QUEUES.partake, { userId, activityId: OPEN }, { messageId }).then((r) => r.body);
  const first = await again('req-1');
  assert.is(first.code, '0000');
  assert.equal((await again('req-1')).data, first.data);
  assert.is((await use(userId, first.data.orderId)).code, '0000');
  // A late retry of the first request, after its order was used: the same order, now used, nothing spent.
  assert.equal((await again('req-1')).data, { ...first.data, orderState: 'used' });
  assert.is((await stateOf(userId)).account.total_count_surplus, 2);
  // An envelope id counts as the message id, and an id over 128 characters is kept as its hash.
  const long = `req-${'x'.repeat(200)}`; // AMQP allows 255
  const second = await again(long);
  assert.is.not(second.data.orderId, first.data.orderId);
  assert.is((await use(userId, second.data.orderId)).code, '0000');
  assert.equal((await again(long)).data, { ...second.data, orderState: 'used' });
  const enveloped = await client.rpc(QUEUES.partake, null, { raw: JSON.stringify({ id: long, timestamp: Date.now(), data: { userId, activityId: OPEN } }) });
  assert.equal(enveloped.body.data, { ...second.data, orderState: 'used' });
  const s = await stateOf(userId);
  assert.equal([s.orders.length, s.account.total_count_surplus, s.tasks.length], [2, 1, 2]);
});

test('raffle-order.used without replyTo marks the order used once', async () => {
  const userId = 'user-noreply-use';
  await givenAccount(userId);
  const r = await partake(userId);
  await client.publish(QUEUES.raffleOrderUsed, { userId, orderId: r.data.orderId });
  await waitFor(async () => (await stateOf(userId)).orders[0]?.order_state === 'used', 10_000, 'order used');
  await client.publish(QUEUES.raffleOrderUsed, { userId, orderId: r.data.orderId });
  const next = await partake(userId); // the consumer is still alive and a new chance is spent
  assert.is(next.code, '0000');
  assert.is.not(next.data.orderId, r.data.orderId);
  assert.is((await stateOf(userId)).account.total_count_surplus, 8);
});

test('activity gates: not open 003, outside dates 004, unknown 010', async () => {
  const userId = 'gated';
  for (const a of [CLOSED, NOT_STARTED, ENDED]) await givenAccount(userId, {}, a);
  await givenAccount(userId, {}, 555);
  assert.is((await partake(userId, CLOSED)).code, 'ERR_BIZ_003');
  assert.is((await partake(userId, NOT_STARTED)).code, 'ERR_BIZ_004');
  assert.is((await partake(userId, ENDED)).code, 'ERR_BIZ_004');
  assert.is((await partake(userId, 555)).code, 'ERR_BIZ_010');
  assert.equal((await stateOf(userId)).orders, []);
});

test('invalid requests: 0002 with replyTo, dead-letter without; nothing changed; worker alive', async () => {
  const userId = 'careful';
  await givenAccount(userId);
  const before = await stateOf(userId);
  const bad: Array<[string, string]> = [
    [QUEUES.partake, 'not json'],
    [QUEUES.partake, '[1]'],
    [QUEUES.partake, '{}'],
    [QUEUES.partake, JSON.stringify({ userId: '', activityId: OPEN })],
    [QUEUES.partake, JSON.stringify({ userId: 'x'.repeat(129), activityId: OPEN })],
    [QUEUES.partake, JSON.stringify({ userId, activityId: String(OPEN) })],
    [QUEUES.partake, JSON.stringify({ userId, activityId: 0 })],
    [QUEUES.partake, JSON.stringify({ userId, activityId: 1.5 })],
    [QUEUES.partake, JSON.stringify({ userId: 7, activityId: OPEN })],
    [QUEUES.accountQuery, JSON.stringify({ userId })],
    [QUEUES.raffleOrderUsed, JSON.stringify({ userId, orderId: 123 })],
  ];
  for (const [queue, raw] of bad) {
    const r = await client.rpc(queue, null, { raw });
    assert.is(r.body.code, '0002', raw);
    assert.ok(typeof r.body.info === 'string' && r.body.info.length > 0);
    assert.is(r.props.contentType, 'application/json');
  }
  const deadIds = [
    await client.publish(QUEUES.partake, null, { raw: 'not json' }),
    await client.publish(QUEUES.partake, { userId, activityId: 'x' }),
    await client.publish(QUEUES.partake, { userId, activityId: OPEN }), // valid, but nobody to answer
    await client.publish(QUEUES.accountQuery, { userId, activityId: OPEN }),
    await client.publish(QUEUES.raffleOrderUsed, { userId }),
  ];
  const errors: string[] = [];
  for (const id of deadIds) {
    const d = await client.waitDeadLetter((m) => m.props.messageId === id);
    errors.push(String(d.props.headers?.['x-error']).split(':')[0]!);
  }
  assert.equal(errors, ['INVALID_JSON', 'INVALID_MESSAGE', 'NO_REPLY_TO', 'NO_REPLY_TO', 'INVALID_MESSAGE']);
  assert.equal(await stateOf(userId), before);
  assert.is((await partake(userId)).code, '0000');
});

test('an undeliverable reply is acked and its effect stands: the next partake returns the same order', async () => {
  const userId = 'gone-caller';
  await givenAccount(userId);
  await client.publish(QUEUES.partake, { userId, activityId: OPEN }, { props: { replyTo: 'amq.gen-no-such-queue', correlationId: 'c1' } });
  const s = await waitFor(
    async () => {
      const x = await stateOf(userId);
      return x.orders.length === 1 && x;
    },
    10_000,
    'the order',
  );
  const r = await partake(userId);
  assert.is(r.data.orderId, s.orders[0]!.order_id);
  assert.is((await stateOf(userId)).account.total_count_surplus, 9);
  assert.equal(await client.deadLetters().then((d) => d.filter((m) => m.body?.userId === userId)), []);
});

test('a transient database failure is retried: the partake succeeds once', async () => {
  const userId = 'user-transient';
  await givenAccount(userId);
  const { shard } = dbs.forUser(userId);
  const locker = new pg.Client({ connectionString: env.config.shardUrls[shard - 1] });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM raffle_activity_account WHERE user_id = $1 FOR UPDATE', [userId]);
    const reply = partake(userId, OPEN, 20_000);
    // The worker waits on our lock; kill its connection mid-transaction.
    const pid = await waitFor(
      async () => {
        const { rows } = await locker.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'activity-quota:partake:%' AND wait_event_type = 'Lock'`);
        return rows[0]?.pid as number | undefined;
      },
      10_000,
      'the worker waiting on the account lock',
    );
    await locker.query('SELECT pg_terminate_backend($1)', [pid]);
    await locker.query('COMMIT');
    const r = await reply;
    assert.is(r.code, '0000');
    const s = await stateOf(userId);
    assert.equal([s.orders.length, s.account.total_count_surplus, s.tasks.length], [1, 9, 1]);
  } finally {
    await locker.end();
  }
});

test('an unexpected failure mid-transaction replies 0001 and changes nothing', async () => {
  const userId = 'user-unexpected';
  await givenAccount(userId);
  const { ds } = dbs.forUser(userId);
  // The outbox insert is part of the deduction statement: without its table that statement fails
  // (42P01, not transient) after the lock, and the transaction must roll back.
  await sql(ds, 'ALTER TABLE task RENAME TO task_away');
  let reply: Awaited<ReturnType<typeof partake>>;
  try {
    reply = await partake(userId);
  } finally {
    await sql(ds, 'ALTER TABLE task_away RENAME TO task');
  }
  assert.is(reply.code, '0001');
  const s = await stateOf(userId);
  assert.equal([s.orders.length, s.account.total_count_surplus, s.day, s.month, s.tasks.length], [0, 10, undefined, undefined, 0]);
  assert.is((await partake(userId)).code, '0000', 'the worker serves the next request');
});

type Twin = Readonly<{ kind: string; userId: string; send(): Promise<any> }>;

/**
 * Sends `together`'s requests at once (so that they share groups) and `alone`'s one at a time, then
 * asserts that each user of `together` ends as its twin of `alone` (same index, same kind).
 */
async function sameAsAlone(together: Twin[], alone: Twin[], outcome: (userId: string, reply: any) => Promise<unknown>): Promise<{ together: Twin[]; replies: any[] }> {
  const replies = await Promise.all(together.map((u) => u.send()));
  const aloneReplies: any[] = [];
  for (const u of alone) aloneReplies.push(await u.send());
  for (const [i, u] of together.entries()) {
    assert.equal(await outcome(u.userId, replies[i]), await outcome(alone[i]!.userId, aloneReplies[i]), `${u.kind}: ${u.userId} in a group as ${alone[i]!.userId} alone`);
  }
  return { together, replies };
}

/** How many transactions last wrote these shard-1 users' raffle orders that match `where` (rows of one transaction share its xmin). */
async function orderWriters(users: readonly Twin[], where: string): Promise<number> {
  const { ds } = dbs.shards[0]!;
  const xmins = new Set<string>();
  for (const suffix of dbs.suffixes) {
    const { rows } = await sql<{ xmin: string }>(ds, `SELECT xmin::text FROM user_raffle_order_${suffix} WHERE user_id = ANY($1) AND ${where}`, [users.map((u) => u.userId)]);
    for (const r of rows) xmins.add(r.xmin);
  }
  return xmins.size;
}

/** `n` fresh user ids that live in shard database 1. */
function usersOfShard1(prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (dbs.forUser(`${prefix}-${i}`).shard === 1) out.push(`${prefix}-${i}`);
  return out;
}

test('concurrent partakes of many users share transactions (group commit), each with its own order', async () => {
  const users = usersOfShard1('user-group', 40);
  for (const u of users) await givenAccount(u);
  const replies = await Promise.all(users.map((u) => partake(u)));
  assert.equal(
    replies.map((r) => r.code),
    users.map(() => '0000'),
  );
  assert.is(new Set(replies.map((r) => r.data.orderId)).size, 40);
  const orders = [];
  for (const u of users) {
    const s = await stateOf(u);
    assert.is(s.orders.length, 1);
    assert.is(s.account.total_count_surplus, 9);
    orders.push(s.orders[0]!.order_id);
  }
  // Rows written by one transaction share its id (xmin).
  const { ds } = dbs.shards[0]!;
  const xmins = new Set<string>();
  for (const suffix of dbs.suffixes) {
    const { rows } = await sql<{ xmin: string }>(ds, `SELECT xmin::text FROM user_raffle_order_${suffix} WHERE order_id = ANY($1)`, [orders]);
    for (const r of rows) xmins.add(r.xmin);
  }
  assert.ok(xmins.size < 40, `40 orders in ${xmins.size} transactions`);
});

test('a partake that fails inside a group gets 0001 alone; its neighbours in the group succeed', async () => {
  const users = usersOfShard1('user-neighbour', 30);
  const broken = users[users.length - 1]!;
  for (const u of users) await givenAccount(u);
  const { ds } = dbs.shards[0]!;
  // Fails the order insert of one user, non-transiently; the sequence counts its attempts
  // (sequences are not rolled back).
  await sql(ds, 'CREATE SEQUENCE broken_attempts');
  await sql(
    ds,
    `CREATE FUNCTION fail_broken() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.user_id = '${broken}' THEN PERFORM nextval('broken_attempts'); RAISE EXCEPTION 'broken user'; END IF; RETURN NEW; END $$`,
  );
  for (const suffix of dbs.suffixes) await sql(ds, `CREATE TRIGGER fail_broken BEFORE INSERT ON user_raffle_order_${suffix} FOR EACH ROW EXECUTE FUNCTION fail_broken()`);
  let replies: Awaited<ReturnType<typeof partake>>[];
  try {
    replies = await Promise.all(users.map((u) => partake(u)));
  } finally {
    for (const suffix of dbs.suffixes) await sql(ds, `DROP TRIGGER fail_broken ON user_raffle_order_${suffix}`);
    await sql(ds, 'DROP FUNCTION fail_broken()');
  }
  const attempts = Number((await sql<{ n: string }>(ds, 'SELECT last_value AS n FROM broken_attempts')).rows[0]!.n);
  await sql(ds, 'DROP SEQUENCE broken_attempts');
  assert.equal(
    replies.map((r) => r.code),
    users.map((u) => (u === broken ? '0001' : '0000')),
  );
  assert.is(attempts, 2, 'the broken partake ran in a group, then alone');
  for (const u of users) {
    const s = await stateOf(u);
    assert.equal([s.orders.length, s.account.total_count_surplus, s.tasks.length], u === broken ? [0, 10, 0] : [1, 9, 1], u);
  }
});

test('partakes of every kind decided together in set-based groups leave the same rows and replies as each alone', async () => {
  const KINDS: Array<[string, Given | undefined]> = [
    ['none', undefined],
    ['month-out', { monthRow: [6, 0], dayRow: [3, 3] }],
    ['day-out', { dayRow: [3, 0], monthRow: [6, 2] }],
    ['rows-left', { dayRow: [3, 2], monthRow: [6, 4] }],
    ['fresh', {}],
    ['open', {}],
    ['redelivered', {}],
  ];
  /** Users of each kind (on shard 1, over its split tables), set up; then the partake each gets. */
  async function given(prefix: string): Promise<Array<{ kind: string; userId: string; send(): Promise<any> }>> {
    const users = usersOfShard1(prefix, KINDS.length * 4);
    return Promise.all(
      users.map(async (userId, i) => {
        const [kind, g] = KINDS[i % KINDS.length]!;
        if (g) await givenAccount(userId, g);
        const messageId = `${userId}-req`;
        if (kind === 'open') assert.is((await partake(userId)).code, '0000');
        if (kind === 'redelivered') {
          const first = await client.rpc(QUEUES.partake, { userId, activityId: OPEN }, { messageId });
          assert.is((await use(userId, first.body.data.orderId)).code, '0000');
        }
        const send = () => (kind === 'redelivered' ? client.rpc(QUEUES.partake, { userId, activityId: OPEN }, { messageId }).then((r) => r.body) : partake(userId));
        return { kind, userId, send };
      }),
    );
  }
  /** A reply and the user's rows without ids and times: what must not depend on how the partake ran. */
  const outcome = async (userId: string, reply: any) => {
    const s = await stateOf(userId);
    return {
      reply: [reply.code, reply.data?.orderState ?? null],
      account: s.account ?? null,
      day: s.day ?? null,
      month: s.month ?? null,
      orders: s.orders.map((o) => [o.suffix === dbs.forUser(userId).suffix, o.order_state, o.activity_name, o.strategy_id]),
      tasks: s.tasks.map((t) => [t.topic, t.message.data.userId === userId]),
    };
  };
  const { together, replies } = await sameAsAlone(await given('set-group'), await given('set-alone'), outcome);
  assert.equal(
    together.map((u, i) => `${u.kind}:${replies[i].code}`),
    together.map((u) => `${u.kind}:${{ none: 'ERR_BIZ_006', 'month-out': 'ERR_BIZ_007', 'day-out': 'ERR_BIZ_008' }[u.kind] ?? '0000'}`),
  );
  // The new orders were written by fewer transactions than orders: the groups were set-based batches.
  const created = together.filter((u) => u.kind === 'rows-left' || u.kind === 'fresh');
  const writers = await orderWriters(created, "order_state = 'create'");
  assert.ok(writers < created.length, `${created.length} orders in ${writers} transactions`);
});

test('uses of every kind done together in set-based groups leave the same rows and replies as each alone', async () => {
  const KINDS = ['unused', 'used-by-another', 'unused', 'redelivered', 'unused', 'cancelled', 'unknown'] as const;
  const useWith = (userId: string, orderId: string, messageId: string) => client.rpc(QUEUES.raffleOrderUsed, { userId, orderId }, { messageId }).then((r) => r.body);
  /** Users of each kind (on shard 1, over its split tables) with an order in that state; then the use each gets. */
  async function given(prefix: string): Promise<Array<{ kind: string; userId: string; send(): Promise<any> }>> {
    const users = usersOfShard1(prefix, KINDS.length * 4);
    return Promise.all(
      users.map(async (userId, i) => {
        const kind = KINDS[i % KINDS.length]!;
        await givenAccount(userId);
        const created = await partake(userId);
        assert.is(created.code, '0000');
        const orderId: string = kind === 'unknown' ? `${created.data.orderId}9` : created.data.orderId;
        const messageId = `${userId}-use`;
        if (kind === 'used-by-another') assert.is((await useWith(userId, orderId, `${userId}-other`)).code, '0000');
        if (kind === 'redelivered') assert.is((await useWith(userId, orderId, messageId)).code, '0000');
        if (kind === 'cancelled') assert.is((await client.rpc(QUEUES.raffleOrderCancel, { userId, orderId }).then((r) => r.body)).code, '0000');
        return { kind, userId, send: () => useWith(userId, orderId, messageId) };
      }),
    );
  }
  const outcome = async (userId: string, reply: any) => {
    const s = await stateOf(userId);
    return { reply: [reply.code, reply.data?.orderState ?? null], account: s.account, orders: s.orders.map((o) => o.order_state), tasks: s.tasks.map((t) => t.topic) };
  };
  const { together, replies } = await sameAsAlone(await given('use-group'), await given('use-alone'), outcome);
  assert.equal(
    together.map((u, i) => `${u.kind}:${replies[i].code === '0000'}`),
    together.map((u) => `${u.kind}:${u.kind === 'unused' || u.kind === 'redelivered'}`),
  );
  // The uses were written by fewer transactions than uses: the groups were set-based batches.
  const used = together.filter((u) => u.kind === 'unused');
  // Each remembers its request: delivered again, it answers the used order.
  assert.equal(
    (await Promise.all(used.map((u) => u.send()))).map((r) => [r.code, r.data?.orderState]),
    used.map(() => ['0000', 'used']),
  );
  const writers = await orderWriters(used, "order_state = 'used'");
  assert.ok(writers < used.length, `${used.length} uses in ${writers} transactions`);
});

test.run();
