import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from '../../infra/db';
import { claimDue, type EnqueuedTask } from '../../infra/outbox';
import { TOPICS } from '../../infra/topology';
import { openContext, type Context } from '../../workers/runtime';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedTask } from '../support/seed';
import { startWorker, type Running } from '../support/workers';

let world: TestEnv;
let client: TestClient;
let ctx: Context & { close(): Promise<void> };
const running: Running[] = [];

test.before(async () => {
  world = await createTestEnv({ extra: { OUTBOX_LEASE_MS: '5000' } });
  ctx = await openContext('relay-test', world.config, 4);
  client = await connectClient(world.config.amqpUrl);
});

test.after(async () => {
  for (const r of running) await r.stop().catch(() => undefined);
  await client?.close();
  await ctx?.close();
  await world?.cleanup();
});

async function addTasks(n: number, prefix: string): Promise<Array<EnqueuedTask & { shard: number }>> {
  const out: Array<EnqueuedTask & { shard: number }> = [];
  for (let i = 0; i < n; i++) {
    const userId = `${prefix}-user-${i}`;
    out.push(await seedTask(ctx.dbs, userId, TOPICS.rechargeCompleted, { userId, i }));
  }
  return out;
}

async function states(): Promise<Map<string, { state: string; attempts: number }>> {
  const m = new Map<string, { state: string; attempts: number }>();
  for (const s of ctx.dbs.shards) {
    const { rows } = await sql<{ message_id: string; state: string; attempts: number }>(s.ds, 'SELECT message_id, state, attempts FROM task');
    for (const r of rows) m.set(r.message_id, r);
  }
  return m;
}

const deliveries = (id: string) => client.events.filter((e) => e.props.messageId === id).length;

test('fast path publishes a task once, with its message id, and marks it completed', async () => {
  const [t] = await addTasks(1, 'fast');
  await ctx.relay.publishNow(ctx.dbs.shards[t!.shard - 1]!.ds, [t!]);
  const e = await client.waitEvent((e) => e.props.messageId === t!.messageId, 5_000);
  assert.is(e.key, TOPICS.rechargeCompleted);
  assert.is(e.body.id, t!.messageId);
  assert.is(e.props.type, TOPICS.rechargeCompleted);
  assert.is(e.props.deliveryMode, 2);
  assert.ok(typeof e.props.timestamp === 'number' && Math.abs(e.props.timestamp - Date.now() / 1000) < 60, 'timestamp in seconds');
  assert.is(e.props.contentType, 'application/json');
  // The fast path's completion marks are batched (up to 100 ms per database); drain sends them now.
  await ctx.relay.drain();
  assert.is((await states()).get(t!.messageId)?.state, 'completed');
  // A second fast-path call for the same task publishes nothing.
  await ctx.relay.publishNow(ctx.dbs.shards[t!.shard - 1]!.ds, [t!]);
  await new Promise((r) => setTimeout(r, 300));
  assert.is(deliveries(t!.messageId), 1);
});

test('the fast path leaves a task claimed by a relay alone; the claim expires after its lease', async () => {
  const [t] = await addTasks(1, 'claimed');
  const ds = ctx.dbs.shards[t!.shard - 1]!.ds;
  const claimed = await claimDue(ds, ctx.config.outbox);
  assert.equal(
    claimed.map((c) => c.message_id),
    [t!.messageId],
  );
  await ctx.relay.publishNow(ds, [t!]);
  await new Promise((r) => setTimeout(r, 300));
  assert.is(deliveries(t!.messageId), 0);
  assert.is((await states()).get(t!.messageId)?.state, 'create');
  // As if the claiming relay crashed: the relays of the next test pick it up after the 5 s lease.
});

test('two relays at once publish every task exactly once and mark all completed', async () => {
  running.push(await startWorker('task-compensation', world.config));
  running.push(await startWorker('task-compensation', world.config));
  const tasks = await addTasks(150, 'cron');
  assert.ok(new Set(tasks.map((t) => t.shard)).size === 2, 'tasks on both shards');
  await waitFor(() => tasks.every((t) => deliveries(t.messageId) >= 1), 20_000, 'all events');
  // Also the task the previous test left claimed: due only once its 5 s lease has run out (counted
  // from that claim, not from here), then the next relay round (every second) sends and marks it.
  await waitFor(async () => [...(await states()).values()].every((s) => s.state === 'completed'), 15_000, 'all completed');
  await new Promise((r) => setTimeout(r, 1_500));
  const dup = tasks.filter((t) => deliveries(t.messageId) !== 1);
  assert.is(dup.length, 0, `published more than once: ${dup.map((t) => t.messageId).join(', ')}`);
});

test('broker unavailable for a while: tasks stay unsent, then all go out', async () => {
  for (const r of running.splice(0)) await r.stop();
  // The relay reaches the broker through a proxy that this test cuts and restores.
  const upstream = new URL(world.config.amqpUrl);
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve) => {
      server = net.createServer((down) => {
        const up = net.connect(Number(upstream.port || 5672), upstream.hostname);
        for (const s of [down, up]) sockets.add(s), s.on('error', () => undefined), s.on('close', () => sockets.delete(s));
        down.pipe(up).pipe(down);
      });
      server.listen(port, '127.0.0.1', () => resolve((server!.address() as net.AddressInfo).port));
    });
  const cut = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server!.close(() => r(undefined)));
  };
  const port = await listen(0);
  const via = new URL(world.config.amqpUrl);
  via.hostname = '127.0.0.1';
  via.port = String(port);
  const relay = await startWorker('task-compensation', { ...world.config, amqpUrl: via.toString() });
  running.push(relay);
  try {
    await cut();
    await waitFor(() => !relay.ctx.broker.connected(), 5_000, 'relay to notice the outage');
    const tasks = await addTasks(20, 'outage');
    for (const s of ctx.dbs.shards)
      await relay.ctx.relay.publishNow(
        s.ds,
        tasks.filter((t) => t.shard === s.shard),
      );
    await new Promise((r) => setTimeout(r, 2_500));
    assert.is(tasks.filter((t) => deliveries(t.messageId) > 0).length, 0, 'nothing published during the outage');
    const during = await states();
    assert.ok(
      tasks.every((t) => during.get(t.messageId)?.state === 'create' && during.get(t.messageId)?.attempts === 0),
      'tasks still create, no attempt used',
    );
    await listen(port);
    await waitFor(() => tasks.every((t) => deliveries(t.messageId) === 1), 25_000, 'all events after the outage');
    await waitFor(
      async () => {
        const after = await states();
        return tasks.every((t) => after.get(t.messageId)?.state === 'completed');
      },
      5_000,
      'all completed',
    );
  } finally {
    await relay.stop();
    running.splice(running.indexOf(relay), 1);
    server?.close();
    for (const s of sockets) s.destroy();
  }
});

test.run();
