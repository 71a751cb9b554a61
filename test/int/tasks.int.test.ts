import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from '../../infra/db';
import { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, QUEUES } from '../../infra/topology';
import { waitFor } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedTask } from '../support/seed';
import { npmScript, startWorker, type Running } from '../support/workers';

let world: TestEnv;
let worker: Running;
let conn: ChannelModel;
let ch: Channel;

test.before(async () => {
  // The relay of the in-process worker: a short road to `dead`.
  world = await createTestEnv({ extra: { OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_BACKOFF_MS: '300', OUTBOX_LEASE_MS: '5000' } });
  worker = await startWorker('task-compensation', world.config);
  conn = await amqplib.connect(world.config.amqpUrl);
  ch = await conn.createChannel();
});

test.after(async () => {
  await worker?.stop();
  await conn?.close().catch(() => undefined);
  await world?.cleanup();
});

const tasksCli = (...args: string[]) => npmScript('tasks', args, world.env);

async function addTask(userId: string, topic: string): Promise<{ messageId: string; shard: number }> {
  const t = await seedTask(worker.ctx.dbs, userId, topic);
  return { messageId: t.messageId, shard: t.shard };
}

type TaskRow = { state: string; attempts: number; gap_ms: number; last_error: string | null };
async function taskRow(t: { messageId: string; shard: number }): Promise<TaskRow> {
  const { rows } = await sql<TaskRow>(
    worker.ctx.dbs.shards[t.shard - 1]!.ds,
    `SELECT state, attempts, EXTRACT(EPOCH FROM next_attempt_at - update_time)::float8 * 1000 AS gap_ms, last_error FROM task WHERE message_id = $1`,
    [t.messageId],
  );
  return rows[0]!;
}

async function bindQueue(topic: string): Promise<string> {
  const q = `test.${topic}`;
  await ch.assertQueue(q, { durable: false });
  await ch.bindQueue(q, EVENTS_EXCHANGE, topic);
  return q;
}

const getOne = (q: string) => waitFor(async () => (await ch.get(q, { noAck: true })) || undefined, 10_000, `a message on ${q}`) as Promise<GetMessage>;

const send = (queue: string, body: string) => ch.sendToQueue(queue, Buffer.from(body), { persistent: true, contentType: 'application/json' });

test('unroutable task: fail with growing backoff, dead past the limit, listed, replayed by message', async () => {
  const t = await addTask('unroutable-1', 'nobody.listens');
  const seen = new Map<number, TaskRow>();
  await waitFor(
    async () => {
      const r = await taskRow(t);
      assert.is.not(r.state, 'completed');
      if (r.attempts > 0 && !seen.has(r.attempts)) seen.set(r.attempts, r);
      return r.state === 'dead';
    },
    15_000,
    'the task to be dead',
  );
  assert.is(seen.get(1)?.state, 'fail');
  assert.is(seen.get(2)?.state, 'fail');
  assert.is(seen.get(3)?.state, 'dead');
  assert.ok(Math.abs(seen.get(1)!.gap_ms - 300) < 50, `first backoff ${seen.get(1)!.gap_ms}`);
  assert.ok(Math.abs(seen.get(2)!.gap_ms - 600) < 50, `second backoff ${seen.get(2)!.gap_ms}`);
  assert.match(seen.get(3)!.last_error ?? '', /unroutable/);

  const listed = JSON.parse(await tasksCli('list', '--state', 'dead', '--json')) as Array<{ message_id: string; attempts: number; state: string; shard: number }>;
  const mine = listed.find((r) => r.message_id === t.messageId);
  assert.ok(mine, 'tasks list shows the dead task');
  assert.is(mine!.attempts, 3);
  assert.is(mine!.shard, t.shard);
  const table = await tasksCli('list');
  assert.match(table, /shard\s+id\s+message_id\s+topic\s+state\s+attempts\s+next_attempt_at\s+last_error/);
  assert.match(table, new RegExp(`${t.messageId}\\s+nobody\\.listens\\s+dead\\s+3`));

  // Bad replay input is dead-lettered with its reason; the worker stays up.
  send(QUEUES.taskReplay, JSON.stringify({ state: 'completed' }));
  const dl = await waitFor(async () => (await ch.get(DEAD_LETTER_QUEUE, { noAck: true })) || undefined, 10_000, 'dead letter');
  assert.match(String(dl.properties.headers?.['x-error']), /^INVALID_MESSAGE: /);

  const q = await bindQueue('nobody.listens');
  send(QUEUES.taskReplay, JSON.stringify({ taskIds: [t.messageId] }));
  const m = await getOne(q);
  assert.is(m.properties.messageId, t.messageId);
  assert.is(JSON.parse(m.content.toString()).id, t.messageId);
  await waitFor(async () => (await taskRow(t)).state === 'completed', 5_000, 'completed after replay');
  assert.is((await taskRow(t)).attempts, 0);
});

test('tasks replay --state dead re-queues dead tasks from the command line', async () => {
  const a = await addTask('unroutable-2', 'nobody.two');
  const b = await addTask('unroutable-3', 'nobody.two');
  await waitFor(async () => (await taskRow(a)).state === 'dead' && (await taskRow(b)).state === 'dead', 15_000, 'both dead');
  const q = await bindQueue('nobody.two');
  const out = await tasksCli('replay', '--state', 'dead');
  assert.match(out, /^2 task\(s\) re-queued/);
  const got = new Set([(await getOne(q)).properties.messageId, (await getOne(q)).properties.messageId]);
  assert.equal(got, new Set([a.messageId, b.messageId]));
  await waitFor(async () => (await taskRow(a)).state === 'completed' && (await taskRow(b)).state === 'completed', 5_000, 'completed');
  // Replaying by id works for any finished task, and a second replay of it publishes it again.
  const byId = await tasksCli('replay', '--id', a.messageId);
  assert.match(byId, /^1 task\(s\) re-queued/);
  assert.is((await getOne(q)).properties.messageId, a.messageId);
  // SHARD:ID as `tasks list` prints it addresses one task; the same number on the other shard is untouched.
  const rows = JSON.parse(await tasksCli('list', '--json')) as Array<{ shard: number; id: string; message_id: string }>;
  const rb = rows.find((r) => r.message_id === b.messageId)!;
  await waitFor(async () => (await taskRow(a)).state === 'completed', 5_000, 'a completed again');
  const byShardId = await tasksCli('replay', '--id', `${rb.shard}:${rb.id}`);
  assert.match(byShardId, new RegExp(`^1 task\\(s\\) re-queued for publishing: ${rb.shard}:${rb.id} ${b.messageId}`));
  assert.is((await getOne(q)).properties.messageId, b.messageId);
});

test.run();
