import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { sql } from '../../infra/db';
import { openDatabases, type Databases } from '../../infra/shards';
import { EVENTS_EXCHANGE, QUEUES } from '../../infra/topology';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedAccount, seedActivity } from '../support/seed';
import { startWorker, type Running } from '../support/workers';

const root = path.resolve(import.meta.dirname, '../..');
const OPEN = 100301;

let env: TestEnv;
let worker: Running;
let dbs: Databases;
let conn: ChannelModel;
let ch: Channel;

test.before(async () => {
  env = await createTestEnv();
  dbs = await openDatabases(env.config, { poolSize: 2, name: 'test' });
  await seedActivity(dbs.global, { activityId: OPEN, name: 'Spring raffle' });
  worker = await startWorker('partake', env.config);
  conn = await amqplib.connect(env.config.amqpUrl);
  ch = await conn.createChannel();
});

test.after(async () => {
  await conn?.close().catch(() => undefined);
  await worker?.stop();
  await dbs?.close();
  await env?.cleanup();
});

type Ran = { code: number; stdout: string; stderr: string };

/** `npm run call -- ARGS` against this test world, as a person would run it. */
function call(args: string[], extra: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '-s', 'call', '--', ...args], { cwd: root, env: { ...process.env, ...env.env, ...extra }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('usage errors exit 2 with the usage', async () => {
  for (const args of [[], ['partake', 'u1'], ['partake', 'u1', 'abc'], ['query', 'u1', '0'], ['fly', 'u1', '1'], ['recharge', 'u1', '9011', 'o', 'x']]) {
    const r = await call(args);
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.stderr, 'usage: npm run call -- partake USER ACTIVITY');
    assert.is(r.stdout, '');
  }
});

test('partake and query print the reply and exit 0', async () => {
  const userId = 'xiaofuge';
  const { ds } = dbs.forUser(userId);
  await seedAccount(dbs, userId, OPEN);
  const p = await call(['partake', userId, String(OPEN)]);
  assert.is(p.code, 0, p.stderr);
  const reply = JSON.parse(p.stdout);
  assert.is(reply.code, '0000');
  assert.is(reply.data.userId, userId);
  const { rows } = await sql<{ order_id: string }>(ds, 'SELECT order_id FROM user_raffle_order_001 WHERE user_id = $1', [userId]);
  assert.equal(
    rows.map((r) => r.order_id),
    [reply.data.orderId],
  );

  const q = await call(['query', userId, String(OPEN)]);
  assert.is(q.code, 0, q.stderr);
  assert.equal(JSON.parse(q.stdout), { code: '0000', info: 'success', data: { totalCount: 10, totalCountSurplus: 9, dayCount: 3, dayCountSurplus: 2, monthCount: 6, monthCountSurplus: 5 } });

  const none = await call(['partake', 'no-account', String(OPEN)]);
  assert.is(none.code, 0);
  assert.is(JSON.parse(none.stdout).code, 'ERR_BIZ_006');
});

/**
 * Stands in for the recharge worker and the relay (built elsewhere): answers each recharge with an
 * unrelated event first, then the matching one, so the client must pick by userId + outBusinessNo.
 */
async function fakeRecharge(): Promise<{ seen: any[]; stop(): Promise<void> }> {
  const seen: any[] = [];
  const { consumerTag } = await ch.consume(QUEUES.recharge, (m) => {
    if (!m) return;
    const req = JSON.parse(m.content.toString());
    seen.push({ req, props: m.properties });
    ch.ack(m);
    const emit = (key: string, data: object) =>
      ch.publish(EVENTS_EXCHANGE, key, Buffer.from(JSON.stringify({ id: `e-${seen.length}-${key}`, timestamp: Date.now(), data })), { persistent: true, type: key });
    emit('recharge.completed', { ...req, outBusinessNo: `${req.outBusinessNo}-other`, orderId: '1' });
    if (req.sku === 404) emit('recharge.rejected', { userId: req.userId, sku: req.sku, outBusinessNo: req.outBusinessNo, code: 'ERR_BIZ_010', info: 'unknown SKU' });
    else emit('recharge.completed', { orderId: '123456789012', userId: req.userId, sku: req.sku, activityId: OPEN, totalCount: 10, dayCount: 3, monthCount: 6, outBusinessNo: req.outBusinessNo });
  });
  return { seen, stop: async () => void (await ch.cancel(consumerTag)) };
}

test('recharge publishes to activity.recharge and prints the matching event', async () => {
  const fake = await fakeRecharge();
  try {
    const r = await call(['recharge', 'user001', '9011', 'out-1']);
    assert.is(r.code, 0, r.stderr);
    const ev = JSON.parse(r.stdout);
    assert.is(ev.type, 'recharge.completed');
    assert.equal(ev.data.outBusinessNo, 'out-1');
    assert.equal(fake.seen[0].req, { userId: 'user001', sku: 9011, outBusinessNo: 'out-1' });
    assert.ok(fake.seen[0].props.messageId);

    const rejected = await call(['recharge', 'user001', '404']);
    assert.is(rejected.code, 0, rejected.stderr);
    const ev2 = JSON.parse(rejected.stdout);
    assert.is(ev2.type, 'recharge.rejected');
    assert.is(ev2.data.code, 'ERR_BIZ_010');
    assert.ok(fake.seen[1].req.outBusinessNo.length > 0, 'a fresh outBusinessNo by default');
    assert.is(ev2.data.outBusinessNo, fake.seen[1].req.outBusinessNo);
  } finally {
    await fake.stop();
  }
});

test('no event in time: exit 1 with a clear message', async () => {
  const r = await call(['recharge', 'user001', '9011', 'out-lost'], { CALL_TIMEOUT_MS: '1500' });
  assert.is(r.code, 1);
  assert.match(r.stderr, 'timed out after 1500 ms');
  assert.is(r.stdout, '');
});

test.run();
