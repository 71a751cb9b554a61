import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { route } from '../../domain/router';
import { type Db, sql, type MigrationRunner } from '../../infra/db';
import { shardLifecycle } from '../../infra/migrations/shard-lifecycle';
import { migrate } from '../../infra/migrate';
import { log } from '../../infra/log';
import { countOpenTasks } from '../../infra/outbox';
import { QUEUES } from '../../infra/topology';
import { openDatabases } from '../../infra/shards';
import { purgeRound } from '../../workers/task-compensation/retention';
import { startProxy } from '../support/proxy';
import { COUNTS, aSku, anActivity, drained, load, openWorld, rows, type World } from './recharge-world';

const test = suite('retention');
let w: World;

const A = 100301;
const SKU = 9011;
const USERS = ['ret-ann', 'ret-bob', 'ret-cy', 'ret-dee', "ret-o'hara", 'ret-李'];

test.before(async () => {
  w = await openWorld([]);
  await load(w, { activities: [anActivity(A)], counts: [COUNTS], skus: [aSku(SKU, A, 1000)] });
});
test.after(async () => w?.close());

test('rejections recorded only as outbox tasks before the upgrade are moved next to the orders, and dedupe without the outbox', async () => {
  // Back to the schema before issue 14 on every shard: rejections lived only as `recharge.rejected` tasks.
  const Lifecycle = shardLifecycle(w.dbs.tableCount);
  for (const { ds } of w.dbs.shards) {
    const runner = { query: async (text: string, params?: unknown[]) => (await sql(ds, text, params ?? [])).rows } as unknown as MigrationRunner;
    await new Lifecycle().down(runner);
    await sql(ds, 'DELETE FROM schema_migrations WHERE name = $1', [new Lifecycle().name]);
  }
  for (const u of USERS) {
    const { ds } = w.dbs.forUser(u);
    const data = { userId: u, sku: SKU, outBusinessNo: `out-${u}`, code: 'ERR_BIZ_005', info: 'sku stock exhausted' };
    await sql(ds, `INSERT INTO task (user_id, topic, message_id, message, state) VALUES ($1, 'recharge.rejected', $2, $3::jsonb, 'completed')`, [
      u,
      `recharge.rejected:old-${u}`,
      JSON.stringify({ id: `recharge.rejected:old-${u}`, timestamp: 1, data }),
    ]);
  }
  const { applied } = await migrate(w.env.config);
  assert.equal(applied.filter((a) => a.includes('ShardLifecycle')).length, w.dbs.shards.length);

  for (const u of USERS) {
    const r = route(u, w.dbs.shards.length, w.dbs.tableCount);
    const found: string[] = [];
    for (const { shard, ds } of w.dbs.shards) {
      for (const s of w.dbs.suffixes) {
        const { rows: x } = await sql<any>(ds, `SELECT out_business_no, code, message_id FROM raffle_activity_order_rejection_${s} WHERE user_id = $1`, [u]);
        if (x.length) found.push(`${shard}:${s}:${x[0].out_business_no}:${x[0].code}:${x[0].message_id}`);
      }
    }
    assert.equal(found, [`${r.shard}:${r.suffix}:out-${u}:ERR_BIZ_005:recharge.rejected:old-${u}`], u);
  }

  // The outbox is purged (as its retention will); the same requests come again while stock is there.
  for (const { ds } of w.dbs.shards) await sql(ds, 'DELETE FROM task');
  const { startWorker } = await import('../support/workers');
  const worker = await startWorker('recharge', w.env.config);
  w.workers.set('recharge', worker);
  for (const u of USERS) await w.client.publish(QUEUES.recharge, { userId: u, sku: SKU, outBusinessNo: `out-${u}` });
  await w.client.publish(QUEUES.recharge, { userId: 'ret-new', sku: SKU, outBusinessNo: 'fresh' });
  await w.client.waitEvent((e) => e.key === 'recharge.completed' && e.data?.userId === 'ret-new', 10_000);
  await drained(w, QUEUES.recharge);
  assert.equal(
    (await rows(w, 'raffle_activity_order', `user_id LIKE 'ret-%'`)).map((o) => o.user_id),
    ['ret-new'],
  );
  assert.equal(w.client.events.filter((e) => USERS.includes(e.data?.userId)).length, 0, 'a duplicate emits no event');
});

test('a new rejection is kept in the split table in the transaction of its event; a redelivery is a duplicate', async () => {
  await load(w, { activities: [anActivity(A + 1, { state: 'close' })], counts: [COUNTS], skus: [aSku(9012, A + 1, 10)] });
  await w.client.publish(QUEUES.recharge, { userId: 'ret-eve', sku: 9012, outBusinessNo: 'e-1' });
  const ev = await w.client.waitEvent((e) => e.key === 'recharge.rejected' && e.data?.userId === 'ret-eve', 10_000);
  const kept = await rows(w, 'raffle_activity_order_rejection', 'user_id = $1', ['ret-eve']);
  assert.equal(
    kept.map((k) => [k.out_business_no, k.code, k.message_id, Number(k.sku)]),
    [['e-1', 'ERR_BIZ_003', ev.props.messageId, 9012]],
  );
  for (const { ds } of w.dbs.shards) await sql(ds, 'DELETE FROM task');
  await load(w, { activities: [anActivity(A + 1)], counts: [COUNTS], skus: [aSku(9012, A + 1, 10)] }); // now open
  await w.client.publish(QUEUES.recharge, { userId: 'ret-eve', sku: 9012, outBusinessNo: 'e-1' });
  await drained(w, QUEUES.recharge);
  assert.equal(await rows(w, 'raffle_activity_order', 'user_id = $1', ['ret-eve']), []);
  assert.is(w.client.events.filter((e) => e.data?.userId === 'ret-eve').length, 1);
});

test('retention deletes completed tasks and inbox rows older than the period, in batches, and nothing else', async () => {
  const [one, two] = w.dbs.shards;
  const age = (hours: number) => `now() - interval '${hours} hours'`;
  // Shard 1: a failed and a dead task older than 2,500 old completed tasks (three batches; retention
  // walks the primary key past the two), 3 young ones; old tasks still to send or dead stay.
  for (const state of ['fail', 'dead'])
    await sql(one!.ds, `INSERT INTO task (user_id, topic, message_id, message, state, update_time) VALUES ('ret-open', 'recharge.completed', $1, '{}'::jsonb, $2, ${age(5)})`, [
      `ret-open-${state}`,
      state,
    ]);
  await sql(
    one!.ds,
    `INSERT INTO task (user_id, topic, message_id, message, state, update_time)
    SELECT 'ret-old', 'recharge.completed', 'ret-old-' || g, '{}'::jsonb, 'completed', ${age(3)} FROM generate_series(1, 2500) g`,
  );
  await sql(
    one!.ds,
    `INSERT INTO task (user_id, topic, message_id, message, state, update_time)
    SELECT 'ret-young', 'recharge.completed', 'ret-young-' || g, '{}'::jsonb, 'completed', ${age(0)} FROM generate_series(1, 3) g`,
  );
  for (const state of ['create', 'fail', 'dead'])
    await sql(two!.ds, `INSERT INTO task (user_id, topic, message_id, message, state, update_time) VALUES ('ret-kept', 'recharge.completed', $1, '{}'::jsonb, $2, ${age(5)})`, [`ret-${state}`, state]);
  await sql(w.dbs.global, `INSERT INTO processed_message (consumer, message_id, processed_at) VALUES ('stock-zero', 'ret-old', ${age(3)}), ('stock-zero', 'ret-young', now())`);
  const count = async (ds: Db, where: string) => Number((await sql<{ n: string }>(ds, `SELECT count(*) AS n FROM task WHERE ${where}`)).rows[0]!.n);

  const purged = await purgeRound(w.dbs, 3_600, log);
  assert.equal(purged, { tasks: 2_500, inbox: 1 });
  assert.is(await count(one!.ds, "user_id = 'ret-old'"), 0);
  assert.is(await count(one!.ds, "user_id = 'ret-young'"), 3);
  assert.is(await count(two!.ds, "user_id = 'ret-kept'"), 3);
  assert.is(await count(one!.ds, "user_id = 'ret-open'"), 2);
  assert.equal(await countOpenTasks(one!.ds), { create: 0, fail: 1, dead: 1 });
  assert.equal(await countOpenTasks(two!.ds), { create: 1, fail: 1, dead: 1 });
  assert.equal((await sql<{ message_id: string }>(w.dbs.global, "SELECT message_id FROM processed_message WHERE message_id LIKE 'ret-%'")).rows, [{ message_id: 'ret-young' }]);
  assert.equal(await purgeRound(w.dbs, 3_600, log), { tasks: 0, inbox: 0 });
});

test('a shard that is down or silent is skipped, the others are purged, and the next round purges it', async () => {
  const age = (hours: number) => `now() - interval '${hours} hours'`;
  for (const { ds } of w.dbs.shards)
    await sql(
      ds,
      `INSERT INTO task (user_id, topic, message_id, message, state, update_time)
      SELECT 'ret-down', 'recharge.completed', 'ret-down-' || g, '{}'::jsonb, 'completed', ${age(3)} FROM generate_series(1, 10) g`,
    );
  const count = async (i: number) => Number((await sql<{ n: string }>(w.dbs.shards[i]!.ds, "SELECT count(*) AS n FROM task WHERE user_id = 'ret-down'")).rows[0]!.n);
  // Shard 1 reached through a fault proxy, as the task-compensation worker would see it.
  const first = new URL(w.env.config.shardUrls[0]!);
  const proxy = await startProxy({ host: first.hostname, port: Number(first.port || 5432) });
  const dbs = openDatabases(
    { ...w.env.config, shardUrls: [proxy.url(w.env.config.shardUrls[0]!), ...w.env.config.shardUrls.slice(1)], dbConnectTimeoutMs: 1_000, dbStatementTimeoutMs: 1_000 },
    { poolSize: 1, name: 'retention-test' },
  );
  try {
    proxy.down();
    assert.equal(await purgeRound(dbs, 3_600, log), { tasks: 10, inbox: 0 }, 'shard 1 refuses: shard 2 purged');
    assert.equal([await count(0), await count(1)], [10, 0]);
    // Past the circuit's first pause (250 ms) its probe goes out, into silence this time.
    await new Promise((r) => setTimeout(r, 600));
    proxy.drop();
    const accepted = proxy.accepted();
    const t0 = Date.now();
    assert.equal(await purgeRound(dbs, 3_600, log), { tasks: 0, inbox: 0 }, 'shard 1 silent: nothing left elsewhere');
    assert.ok(proxy.accepted() > accepted, 'the round did try shard 1');
    assert.ok(Date.now() - t0 < 10_000, `a silent shard held the round ${Date.now() - t0} ms`);
    assert.is(await count(0), 10);
    proxy.restore();
    // Its circuit opened on the failures; it lets a probe through after at most 5 s.
    let purged = 0;
    for (const until = Date.now() + 15_000; !purged && Date.now() < until; await new Promise((r) => setTimeout(r, 500))) purged = (await purgeRound(dbs, 3_600, log)).tasks;
    assert.is(purged, 10, 'shard 1 back: purged');
    assert.is(await count(0), 0);
  } finally {
    await dbs.close();
    await proxy.close();
  }
});

test.run();
