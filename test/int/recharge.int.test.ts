import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { periodOf } from '../../domain/calendar';
import { begin, sql } from '../../infra/db';
import { reservedKey, skuLockKey, stockKey } from '../../infra/stock';
import { QUEUES } from '../../infra/topology';
import { alreadyHandledAll, inKeyOrder, lockRequests } from '../../workers/recharge/store';
import { seedDayRow, seedMonthRow } from '../support/seed';
import { COUNTS, aSku, account, anActivity, counter, drained, load, openWorld, rows, tasks, waitFor, type World } from './recharge-world';

const test = suite('recharge');
let w: World;

const OPEN = 100301;
const SKU = 9011;
const UNLIMITED = 9014;
/** Limited, and its Redis counter deleted before each use: the recharge finds it missing and rebuilds it. */
const REBUILT = 9015;

test.before(async () => {
  w = await openWorld(['recharge'], { extra: { DELIVERY_LIMIT: '3' } });
  await load(w, {
    activities: [anActivity(OPEN), anActivity(100302, { state: 'close' }), anActivity(100303, { beginTime: '2090-01-01T00:00:00Z' })],
    counts: [COUNTS],
    skus: [aSku(SKU, OPEN, 1000), aSku(9012, 100302, 100), aSku(9013, 100303, 100), aSku(UNLIMITED, OPEN, -1), aSku(REBUILT, OPEN, 1000)],
  });
});
test.after(async () => w?.close());

const recharge = (userId: string, sku: number, outBusinessNo: string, extra: Record<string, unknown> = {}) => w.client.publish(QUEUES.recharge, { userId, sku, outBusinessNo, ...extra });
const ordersOf = (userId: string) => rows(w, 'raffle_activity_order', 'user_id = $1', [userId]);

test('credit: order, account, day and month rows, recharge.completed task, one unit', async () => {
  const { ds } = w.dbs.forUser('alice');
  const { day, month } = periodOf(new Date(), 'UTC');
  await seedDayRow(w.dbs, 'alice', OPEN, day, 3, 1);
  await seedMonthRow(w.dbs, 'alice', OPEN, month, 6, 2);
  await recharge('alice', SKU, 'pay-1', { payType: 'cash', payAmount: '12.50' });
  const [order] = await waitFor(async () => ((await ordersOf('alice')).length ? ordersOf('alice') : undefined), 10_000, 'order');
  assert.is(order!.sku, '9011');
  assert.is(order!.out_business_no, 'pay-1');
  assert.is(order!.pay_type, 'cash');
  assert.is(order!.pay_amount, '12.50');
  assert.match(order!.order_id, /^\d{12}$/);
  assert.equal(await account(w, 'alice', OPEN), { total_count: 10, total_count_surplus: 10, day_count: 3, day_count_surplus: 3, month_count: 6, month_count_surplus: 6 });
  const dayRow = (await sql<any>(ds, `SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = 'alice'`)).rows[0];
  const monthRow = (await sql<any>(ds, `SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = 'alice'`)).rows[0];
  assert.equal(dayRow, { day_count: 6, day_count_surplus: 4 });
  assert.equal(monthRow, { month_count: 12, month_count_surplus: 8 });
  const completed = (await tasks(w, 'recharge.completed')).filter((t) => t.user_id === 'alice');
  assert.is(completed.length, 1);
  assert.is(completed[0]!.message.id, completed[0]!.message_id);
  assert.equal(completed[0]!.message.data, { orderId: order!.order_id, userId: 'alice', sku: SKU, activityId: OPEN, totalCount: 10, dayCount: 3, monthCount: 6, outBusinessNo: 'pay-1' });
  // Published by the worker right after its commit (fast path), not by the relay after the hold.
  await w.client.waitEvent((e) => e.props.messageId === completed[0]!.message_id, 3_000);
  await waitFor(async () => (await sql<{ state: string }>(ds, 'SELECT state FROM task WHERE message_id = $1', [completed[0]!.message_id])).rows[0]?.state === 'completed', 3_000, 'task completed');
  assert.is(await counter(w, SKU), 999);
  assert.is(await w.redis.hlen(reservedKey(SKU)), 0);
});

test('the same message again, then 20 copies at once: one order, one credit, one unit', async () => {
  await recharge('alice', SKU, 'pay-1');
  await Promise.all(Array.from({ length: 20 }, () => recharge('alice', SKU, 'pay-1')));
  await Promise.all(Array.from({ length: 20 }, () => recharge('bob', SKU, 'pay-9')));
  await drained(w, QUEUES.recharge);
  assert.is((await ordersOf('alice')).length, 1);
  assert.is((await ordersOf('bob')).length, 1);
  assert.is((await account(w, 'alice', OPEN))!.total_count, 10);
  assert.is((await account(w, 'bob', OPEN))!.total_count, 10);
  assert.is(await counter(w, SKU), 998);
  assert.is((await tasks(w)).filter((t) => t.user_id === 'alice' || t.user_id === 'bob').length, 2);
});

test('a second outBusinessNo credits again: allowances accumulate', async () => {
  await recharge('alice', SKU, 'pay-2');
  await waitFor(async () => (await ordersOf('alice')).length === 2, 10_000, 'second order');
  assert.equal(await account(w, 'alice', OPEN), { total_count: 20, total_count_surplus: 20, day_count: 6, day_count_surplus: 6, month_count: 12, month_count_surplus: 12 });
  assert.is(await counter(w, SKU), 997);
});

test('closed, not yet begun, unknown sku: rejected with the code, no account, no stock; redelivery rejects once', async () => {
  await recharge('carol', 9012, 'c-1');
  await recharge('dave', 9013, 'd-1');
  await recharge('erin', 424242, 'e-1');
  await recharge('carol', 9012, 'c-1');
  await drained(w, QUEUES.recharge);
  const rejected = (await tasks(w, 'recharge.rejected')).map((t) => t.message.data);
  const codeOf = (u: string) => rejected.filter((d) => d.userId === u).map((d) => d.code);
  assert.equal(codeOf('carol'), ['ERR_BIZ_003']);
  assert.equal(codeOf('dave'), ['ERR_BIZ_004']);
  assert.equal(codeOf('erin'), ['ERR_BIZ_010']);
  assert.equal(Object.keys(rejected.find((d) => d.userId === 'carol')!).sort(), ['code', 'info', 'outBusinessNo', 'sku', 'userId']);
  for (const u of ['carol', 'dave', 'erin']) {
    assert.is(await account(w, u, 100302), undefined);
    assert.is(await account(w, u, 100303), undefined);
    assert.is((await ordersOf(u)).length, 0);
  }
  assert.is(await counter(w, 9012), 100);
  assert.is(await counter(w, 9013), 100);
});

test('unlimited sku: credited without any counter', async () => {
  await recharge('frank', UNLIMITED, 'f-1');
  await waitFor(async () => (await ordersOf('frank')).length === 1, 10_000, 'order');
  assert.is(await counter(w, UNLIMITED), null);
  assert.is((await account(w, 'frank', OPEN))!.total_count, 10);
});

test('malformed bodies are dead-lettered with a reason, nothing changes, the worker stays up', async () => {
  const before = await counter(w, SKU);
  const bad: Array<[string, string]> = [
    ['not json', 'not json {'],
    ['missing sku', JSON.stringify({ userId: 'mal-1', outBusinessNo: 'x' })],
    ['string sku', JSON.stringify({ userId: 'mal-2', sku: '9011', outBusinessNo: 'x' })],
    ['negative sku', JSON.stringify({ userId: 'mal-3', sku: -9011, outBusinessNo: 'x' })],
    ['long userId', JSON.stringify({ userId: 'u'.repeat(129), sku: SKU, outBusinessNo: 'x' })],
    ['control character', JSON.stringify({ userId: 'mal-4\u0007', sku: SKU, outBusinessNo: 'x' })],
    ['lone surrogate', JSON.stringify({ userId: 'mal-7', sku: SKU, outBusinessNo: 'x\ud800' })],
    ['NUL', JSON.stringify({ userId: 'mal-4\u0000', sku: SKU, outBusinessNo: 'x' })],
    ['lone surrogate in userId', JSON.stringify({ userId: 'mal-7\ud800', sku: SKU, outBusinessNo: 'x' })],
    ['sql sku', JSON.stringify({ userId: 'mal-5', sku: '9011; DELETE FROM raffle_activity_sku', outBusinessNo: 'x' })],
    ['1 MB', JSON.stringify({ userId: 'mal-6', sku: SKU, outBusinessNo: 'x', pad: 'p'.repeat(1 << 20) })],
  ];
  const ids = new Map<string, string>();
  for (const [name, raw] of bad) ids.set((await w.client.publish(QUEUES.recharge, null, { raw }))!, name);
  for (const [id, name] of ids) {
    const dl = await w.client.waitDeadLetter((d) => d.props.messageId === id, 10_000);
    assert.ok(String(dl.props.headers?.['x-error']).length > 5, `${name} has a reason`);
    assert.is(dl.props.headers?.['x-original-queue'], QUEUES.recharge);
  }
  assert.is(await counter(w, SKU), before);
  assert.is((await rows(w, 'raffle_activity_order', `user_id LIKE 'mal-%' OR length(user_id) > 128`)).length, 0);
  assert.is((await sql<any>(w.dbs.shards[0]!.ds, `SELECT to_regclass('raffle_activity_account') AS t`)).rows[0].t, 'raffle_activity_account');
  await recharge('after-bad', SKU, 'ok-1');
  await waitFor(async () => (await ordersOf('after-bad')).length === 1, 10_000, 'order after bad input');
});

test('a unit taken for a transaction that fails is given back', async () => {
  const db = w.dbs.forUser('boom');
  await sql(db.ds, `CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$`);
  await sql(db.ds, `CREATE TRIGGER boom BEFORE INSERT ON raffle_activity_order_${db.suffix} FOR EACH ROW WHEN (NEW.user_id = 'boom') EXECUTE FUNCTION boom()`);
  const before = await counter(w, SKU);
  const id = await recharge('boom', SKU, 'b-1');
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === id, 20_000);
  assert.match(String(dl.props.headers?.['x-error']), 'HANDLER_FAILED');
  assert.is(await counter(w, SKU), before);
  assert.is(await w.redis.hlen(reservedKey(SKU)), 0);
  assert.is(await account(w, 'boom', OPEN), undefined);
});

test('a transient database failure is retried: the recharge lands once, one unit taken', async () => {
  const db = w.dbs.forUser('gina');
  const before = await counter(w, SKU);
  // Hold the exclusive SKU lock (as a rebuild would), so the worker's transaction waits inside it.
  const lock = await begin(db.ds);
  await sql(lock, 'SELECT pg_advisory_xact_lock($1::bigint)', [skuLockKey(SKU)]);
  try {
    await recharge('gina', SKU, 'g-1');
    const waiting = await waitFor(
      async () =>
        (
          await sql<{ pid: number }>(
            db.ds,
            `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%advisory_xact_lock_shared%' AND application_name LIKE 'activity-quota:recharge%'`,
          )
        ).rows,
      10_000,
      'a waiting recharge',
    );
    for (const { pid } of waiting) await sql(db.ds, 'SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await lock.commit();
  }
  await waitFor(async () => (await ordersOf('gina')).length === 1, 15_000, 'order after the retry');
  await drained(w, QUEUES.recharge);
  assert.is((await ordersOf('gina')).length, 1);
  assert.is(await counter(w, SKU), before! - 1);
  assert.is(await w.redis.hlen(reservedKey(SKU)), 0);
  assert.is((await account(w, 'gina', OPEN))!.total_count, 10);
});

test("a group waiting for a SKU lock holds no higher one: its SKU locks go in key order, not in its users' order", async () => {
  const db = w.dbs.forUser('key-order');
  const [low, high] = inKeyOrder([skuLockKey(9101), skuLockKey(9102)]) as [string, string];
  // The group's first user recharges the SKU whose key sorts higher.
  const refs = [
    { suffix: db.suffix, userId: 'key-order-a', outBusinessNo: 'k-1', skuLock: high },
    { suffix: db.suffix, userId: 'key-order-b', outBusinessNo: 'k-1', skuLock: low },
  ];
  const rebuild = await begin(db.ds); // holds the lower SKU's exclusive lock, as a rebuild would
  await sql(rebuild, 'SELECT pg_advisory_xact_lock($1::bigint)', [low]);
  const group = await begin(db.ds);
  const { pid } = (await sql<{ pid: number }>(group, 'SELECT pg_backend_pid() AS pid')).rows[0]!;
  const locking = (async () => {
    await lockRequests(group, refs);
    await alreadyHandledAll(group, db.suffixes, refs);
  })();
  try {
    const locks = async () =>
      (
        await sql<{ classid: string; objid: string; granted: boolean }>(
          db.ds,
          `SELECT classid::text, objid::text, granted FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND mode = 'ShareLock'`,
          [pid],
        )
      ).rows.map((r) => ({ key: BigInt.asIntN(64, (BigInt(r.classid) << 32n) | BigInt(r.objid)).toString(), granted: r.granted }));
    const waiting = await waitFor(async () => (await locks()).find((l) => !l.granted), 10_000, 'the group waiting for a SKU lock');
    assert.is(waiting.key, low);
    assert.equal(
      (await locks()).filter((l) => l.granted).map((l) => l.key),
      [],
      'no SKU lock held while waiting for the lower one',
    );
  } finally {
    await rebuild.commit();
    await locking;
    await group.rollback();
  }
});

test("a recharge failing inside a group: its neighbours are credited, the group's units all come back, nothing leaks", async () => {
  const shard = w.dbs.forUser('boom-grouped');
  const neighbours: string[] = [];
  for (let i = 0; neighbours.length < 30; i++) if (w.dbs.forUser(`grouped-${i}`).shard === shard.shard) neighbours.push(`grouped-${i}`);
  // The broken user's order insert fails (not transient); the sequence counts its runs (sequences survive rollbacks).
  await sql(shard.ds, 'CREATE SEQUENCE boom_runs');
  await sql(shard.ds, `CREATE FUNCTION boom_grouped() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('boom_runs'); RAISE EXCEPTION 'boom'; END $$`);
  await sql(shard.ds, `CREATE TRIGGER boom_grouped BEFORE INSERT ON raffle_activity_order_${shard.suffix} FOR EACH ROW WHEN (NEW.user_id = 'boom-grouped') EXECUTE FUNCTION boom_grouped()`);
  const before = (await counter(w, SKU))!;
  const ids = await Promise.all([...neighbours.map((u) => recharge(u, SKU, `n-${u}`)), recharge('boom-grouped', SKU, 'bg-1')]);
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === ids[ids.length - 1], 30_000);
  assert.match(String(dl.props.headers?.['x-error']), 'HANDLER_FAILED');
  await drained(w, QUEUES.recharge);
  const runs = Number((await sql<{ n: string }>(shard.ds, 'SELECT last_value AS n FROM boom_runs')).rows[0]!.n);
  assert.ok(runs > 3, `3 deliveries, ${runs} runs: at least one ran in a group, then alone`);
  for (const u of neighbours) assert.is((await ordersOf(u)).length, 1, u);
  assert.is(await counter(w, SKU), before - neighbours.length, 'exactly one unit per credited neighbour');
  assert.is(await w.redis.hlen(reservedKey(SKU)), 0);
  assert.is(await account(w, 'boom-grouped', OPEN), undefined);
});

test('recharges of every kind handled together in set-based groups leave the same rows as each alone', async () => {
  const { day, month } = periodOf(new Date(), 'UTC');
  const KINDS = ['fresh', 'rows', 'again', 'second', 'closed', 'unknown', 'missing', 'fresh'] as const;
  const shard = w.dbs.forUser('kinds-anchor').shard;
  const usersOf = (prefix: string) => {
    const out: string[] = [];
    for (let i = 0; out.length < KINDS.length * 3; i++) if (w.dbs.forUser(`${prefix}-${i}`).shard === shard) out.push(`${prefix}-${i}`);
    return out;
  };
  /** Sets each user up for its kind (an earlier recharge, day and month rows); answers the recharge each then gets. */
  async function given(prefix: string) {
    const users = usersOf(prefix);
    for (const [i, u] of users.entries()) {
      const kind = KINDS[i % KINDS.length]!;
      if (kind === 'rows') {
        await seedDayRow(w.dbs, u, OPEN, day, 3, 1);
        await seedMonthRow(w.dbs, u, OPEN, month, 6, 2);
      }
      if (kind === 'again' || kind === 'second') {
        await recharge(u, UNLIMITED, `${u}-first`);
        await waitFor(async () => (await ordersOf(u)).length === 1, 10_000, `${u} first`);
      }
    }
    return users.map((u, i) => {
      const kind = KINDS[i % KINDS.length]!;
      const [sku, no] = {
        fresh: [UNLIMITED, 'new'],
        rows: [SKU, 'new'],
        again: [UNLIMITED, 'first'],
        second: [UNLIMITED, 'new'],
        closed: [9012, 'new'],
        unknown: [99_999, 'new'],
        missing: [REBUILT, 'new'],
      }[kind] as [number, string];
      return { kind, userId: u, send: () => recharge(u, sku, `${u}-${no}`), changes: kind !== 'again' };
    });
  }
  /** What must not depend on how the recharge ran: the user's rows without ids and times. */
  async function state(userId: string) {
    const { ds } = w.dbs.forUser(userId);
    const one = async (q: string) => (await sql<any>(ds, q, [userId])).rows;
    return {
      account: (await account(w, userId, OPEN)) ?? null,
      day: await one(`SELECT day_count, day_count_surplus FROM raffle_activity_account_day WHERE user_id = $1`),
      month: await one(`SELECT month_count, month_count_surplus FROM raffle_activity_account_month WHERE user_id = $1`),
      orders: (await ordersOf(userId)).map((o) => [o.sku, o.total_count, o.day_count, o.month_count, o.pay_type, o.state, o.out_business_no.replace(userId, 'U')]),
      rejections: (await rows(w, 'raffle_activity_order_rejection', 'user_id = $1', [userId])).map((r) => [r.sku, r.code, r.out_business_no.replace(userId, 'U')]),
      tasks: (await tasks(w)).filter((t) => t.user_id === userId).map((t) => [t.topic, t.message.data.userId === userId]),
    };
  }
  const outcomes = async (us: ReadonlyArray<{ userId: string }>) => Promise.all(us.map((u) => state(u.userId)));
  const together = await given('kinds-group');
  const alone = await given('kinds-alone');
  const before = (await counter(w, SKU))!;
  const togetherBefore = await outcomes(together);
  // The group's `missing` recharges find their SKU's counter gone: each is answered stock-missing
  // inside the batch, commits nothing, rebuilds the counter and runs again.
  await w.redis.del(stockKey(REBUILT));
  await Promise.all(together.map((u) => u.send()));
  await waitFor(
    async () => (await outcomes(together)).filter((s, i) => JSON.stringify(s) !== JSON.stringify(togetherBefore[i])).length === together.filter((u) => u.changes).length,
    15_000,
    'every recharge of the group handled',
  );
  await drained(w, QUEUES.recharge);
  for (const u of alone) {
    const was = JSON.stringify(await state(u.userId));
    if (u.kind === 'missing') await w.redis.del(stockKey(REBUILT));
    await u.send();
    if (u.changes) await waitFor(async () => JSON.stringify(await state(u.userId)) !== was, 10_000, `${u.kind} ${u.userId} alone`);
    else await drained(w, QUEUES.recharge);
  }
  await drained(w, QUEUES.recharge);
  const [a, b] = [await outcomes(together), await outcomes(alone)];
  for (const [i, u] of together.entries()) assert.equal(a[i], b[i], `${u.kind}: ${u.userId} in a group as ${alone[i]!.userId} alone`);
  assert.is(await counter(w, SKU), before - 2 * together.filter((u) => u.kind === 'rows').length, 'one unit per limited credit');
  assert.is(await counter(w, REBUILT), 1000 - 2 * together.filter((u) => u.kind === 'missing').length, 'the rebuilt counter: one unit per credit, none lost or taken twice');
  // The group's credits were written by fewer transactions than credits: set-based batches.
  const credited = together.filter((u) => u.kind === 'fresh' || u.kind === 'rows' || u.kind === 'second' || u.kind === 'missing');
  const xmins = new Set<string>();
  for (const t of w.dbs.suffixes) {
    const { rows: r } = await sql<{ xmin: string }>(
      w.dbs.forUser(credited[0]!.userId).ds,
      `SELECT xmin::text FROM raffle_activity_order_${t} WHERE user_id = ANY($1) AND out_business_no LIKE '%-new'`,
      [credited.map((u) => u.userId)],
    );
    for (const x of r) xmins.add(x.xmin);
  }
  assert.ok(xmins.size < credited.length, `${credited.length} credits in ${xmins.size} transactions`);
});

test.run();
