import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabases, type Databases } from '../../infra/shards';
import { QUEUES, TOPICS } from '../../infra/topology';
import { WORKERS } from '../../workers/runtime';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedTask } from '../support/seed';

const root = path.resolve(import.meta.dirname, '../..');
let world: TestEnv;
let client: TestClient;
let dbs: Databases;
let child: ChildProcess | undefined;
let port = 0;
// The worker reaches the broker through this proxy, so that the test can cut it.
let proxy: net.Server;
const sockets = new Set<net.Socket>();

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

function listen(upstream: URL, at: number): Promise<number> {
  return new Promise((resolve) => {
    proxy = net.createServer((down) => {
      const up = net.connect(Number(upstream.port || 5672), upstream.hostname);
      for (const s of [down, up]) sockets.add(s), s.on('error', () => undefined), s.on('close', () => sockets.delete(s));
      down.pipe(up).pipe(down);
    });
    proxy.listen(at, '127.0.0.1', () => resolve((proxy.address() as net.AddressInfo).port));
  });
}

test.before(async () => {
  world = await createTestEnv();
  dbs = await openDatabases(world.config, { poolSize: 2, name: 'metrics-test' });
  const amqp = new URL(world.config.amqpUrl);
  const via = new URL(world.config.amqpUrl);
  via.hostname = '127.0.0.1';
  via.port = String(await listen(amqp, 0));
  do port = await freePort();
  while (port < 10);
  // METRICS_PORT is the base: each worker serves on base + its index in WORKERS.
  const base = port - WORKERS.indexOf('task-compensation');
  child = spawn(process.execPath, ['--import', 'tsx', 'workers/run.ts', 'task-compensation'], {
    cwd: root,
    env: { ...process.env, ...world.env, AMQP_URL: via.toString(), METRICS_PORT: String(base), OUTBOX_MAX_ATTEMPTS: '2', OUTBOX_BACKOFF_MS: '60000' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  client = await connectClient(world.config.amqpUrl);
  await waitFor(
    () =>
      fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    20_000,
    'the worker to serve /healthz',
  );
});

test.after(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await client?.close();
  await dbs?.close();
  proxy?.close();
  for (const s of sockets) s.destroy();
  await world?.cleanup();
});

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

const metric = async (key: string) => (await metrics()).get(key) ?? 0;

const addTask = async (userId: string, topic: string): Promise<string> => (await seedTask(dbs, userId, topic)).messageId;

test('/healthz reports every dependency and every queue the worker consumes', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.is(r.status, 200);
  assert.equal(await r.json(), {
    ok: true,
    checks: { broker: 'ok', 'db:global': 'ok', 'db:shard1': 'ok', 'db:shard2': 'ok', redis: 'ok', [`consumer:${QUEUES.taskReplay}`]: 'ok' },
  });
  assert.is((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
});

test('/livez is the process, /readyz the dependencies and consumers; Node metrics under their usual names', async () => {
  assert.is((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.is(ready.status, 200);
  const body = (await ready.json()) as { ok: boolean; checks: Record<string, string>; consumers: Record<string, string> };
  assert.is(body.ok, true);
  assert.is(body.checks.broker, 'ok');
  assert.ok(Object.values(body.consumers).length > 0 && Object.values(body.consumers).every((v) => v === 'active' || v === 'connected'), JSON.stringify(body.consumers));
  const names = [...(await metrics()).keys()];
  for (const n of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) assert.ok(names.includes(n), n);
  assert.not.ok(
    names.some((n) => n.startsWith('aq_process_') || n.startsWith('aq_nodejs_')),
    'no aq_ prefix on default metrics',
  );
});

test('/metrics counters move: messages by queue and outcome, handler durations, published and failed tasks, backlog and lag', async () => {
  const q = QUEUES.taskReplay;
  const ack = `aq_messages_total{queue="${q}",outcome="ack"}`;
  const dead = `aq_messages_total{queue="${q}",outcome="dead_letter"}`;
  const durations = `aq_handler_duration_seconds_count{queue="${q}"}`;
  const published = 'aq_outbox_published_total{path="cron"}';
  const before = await metrics();
  assert.is(before.get(ack) ?? 0, 0);

  await client.publish(q, { state: 'dead' });
  await client.publish(q, { state: 'nonsense' });
  await waitFor(async () => (await metric(ack)) === 1 && (await metric(dead)) === 1, 10_000, 'replay outcomes counted');
  assert.is(await metric(durations), 2);

  const ids = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((u) => addTask(u, TOPICS.rechargeCompleted)));
  await waitFor(() => ids.every((id) => client.events.some((e) => e.props.messageId === id)), 10_000, 'events');
  await waitFor(async () => (await metric(published)) - (before.get(published) ?? 0) === 4, 5_000, 'published counted');

  // Unroutable here: client's catch-all binding would route everything, so close it first.
  await client.close();
  const stuck = dbs.forUser('m-stuck').shard;
  await addTask('m-stuck', 'nobody.listens');
  await waitFor(async () => (await metric('aq_outbox_publish_failures_total{kind="unroutable"}')) === 1, 10_000, 'the failure counted');
  const m = await metrics();
  assert.is(m.get(`aq_outbox_tasks{shard="${stuck}",state="fail"}`), 1);
  assert.is(m.get(`aq_outbox_tasks{shard="${stuck}",state="create"}`), 0);
  assert.ok((m.get(`aq_outbox_lag_seconds{shard="${stuck}"}`) ?? 0) > 0, 'lag of the waiting task');
  assert.is(m.get(`aq_outbox_lag_seconds{shard="${3 - stuck}"}`), 0);
  client = await connectClient(world.config.amqpUrl);
});

test('/healthz says 503 while the broker is unreachable, 200 again after; SIGTERM stops the worker cleanly', async () => {
  const at = (proxy.address() as net.AddressInfo).port;
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy.close(() => r(undefined)));
  const down = await waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      return r.status === 503 && ((await r.json()) as { checks: Record<string, string> });
    },
    10_000,
    '503',
  );
  assert.is(down.checks.broker, 'not connected');
  assert.is(down.checks.redis, 'ok');
  assert.is((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503);
  assert.is((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200);
  await listen(new URL(world.config.amqpUrl), at);
  await waitFor(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200), 20_000, '200 again');
  const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
  child!.kill('SIGTERM');
  assert.is(await exited, 0);
});

test.run();
