import amqplib, { type ChannelModel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PermanentError, TransientError } from '../../infra/errors';
import { DEAD_LETTER_QUEUE } from '../../infra/topology';
import { openContext, type Context } from '../../workers/runtime';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';

const QUEUE = 'test.consumer-loop';
let world: TestEnv;
let ctx: Context & { close(): Promise<void> };
let client: TestClient;
let conn: ChannelModel;
/** Deliveries the handler saw, per message id, with the broker's delivery count of each. */
const calls = new Map<string, number[]>();
/** Dependencies the handler pretends are out. */
const down = new Set<string>();
/** Messages that arrived back from the park queue. */
const cameBack = new Set<string>();
const handled = new Set<string>();

test.before(async () => {
  world = await createTestEnv({ extra: { DELIVERY_LIMIT: '3', PREFETCH: '4', OUTAGE_HOLD: '1', PARK_MS: '500' } });
  ctx = await openContext('consumer-test', world.config, 2);
  conn = await amqplib.connect(world.config.amqpUrl);
  const ch = await conn.createChannel();
  // Same arguments as the input queues of the topology.
  await ch.assertQueue(QUEUE, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': DEAD_LETTER_QUEUE },
  });
  await ch.close();
  await ctx.broker.consume(QUEUE, async (msg) => {
    const id = String(msg.properties.messageId);
    const seen = calls.get(id) ?? [];
    seen.push(Number(msg.properties.headers?.['x-delivery-count'] ?? 0));
    calls.set(id, seen);
    const body = JSON.parse(msg.content.toString());
    if (msg.properties.headers?.['x-aq-parked']) cameBack.add(id);
    if (body.kind === 'permanent') throw new PermanentError('INVALID_MESSAGE', 'kind permanent is refused');
    if (body.kind === 'transient' && seen.length <= body.failTimes) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    if (body.kind === 'generic') throw new Error('handler bug');
    if (body.kind === 'needs' && down.has(body.scope)) throw new TransientError(body.scope, 'outage', `${body.scope}: connection refused`);
    handled.add(id);
  });
  client = await connectClient(world.config.amqpUrl);
});

test.after(async () => {
  await client?.close();
  await conn?.close().catch(() => undefined);
  await ctx?.close();
  await world?.cleanup();
});

const deadLettersOf = async (id: string) => (await client.deadLetters()).filter((d) => d.props.messageId === id);

test('PermanentError: one dead letter with x-error, no retry, the consumer keeps going', async () => {
  const id = await client.publish(QUEUE, { kind: 'permanent' }, { messageId: 'perm-1' });
  const dl = await client.waitDeadLetter((d) => d.props.messageId === id);
  const h = dl.props.headers ?? {};
  assert.is(h['x-error'], 'INVALID_MESSAGE: kind permanent is refused');
  assert.is(h['x-original-queue'], QUEUE);
  const death = (h['x-death'] as Array<Record<string, unknown>> | undefined)?.[0];
  assert.is(death?.queue, QUEUE);
  assert.is(death?.reason, 'rejected');
  assert.equal(dl.body, { kind: 'permanent' });
  await client.publish(QUEUE, { kind: 'ok' }, { messageId: 'ok-1' });
  await waitFor(() => handled.has('ok-1'), 5_000, 'the next message');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls.get('perm-1'), [0]);
  assert.is((await deadLettersOf('perm-1')).length, 1);
});

test('transient error: held and retried until it succeeds, not dead-lettered, no delivery used up', async () => {
  await client.publish(QUEUE, { kind: 'transient', failTimes: 4 }, { messageId: 'trans-1' });
  await waitFor(() => handled.has('trans-1'), 15_000, 'the transient message to succeed');
  // Five handler calls on one delivery: a held message does not count against the delivery limit of 3.
  assert.equal(calls.get('trans-1'), [0, 0, 0, 0, 0]);
  assert.is((await deadLettersOf('trans-1')).length, 0);
});

test('generic error: requeued, then dead-lettered with HANDLER_FAILED on the last allowed delivery', async () => {
  await client.publish(QUEUE, { kind: 'generic' }, { messageId: 'gen-1' });
  const dl = await client.waitDeadLetter((d) => d.props.messageId === 'gen-1', 15_000);
  assert.match(String(dl.props.headers?.['x-error']), /^HANDLER_FAILED: failed 3 times: handler bug/);
  assert.is(dl.props.headers?.['x-original-queue'], QUEUE);
  assert.equal(calls.get('gen-1'), [0, 1, 2]);
  await new Promise((r) => setTimeout(r, 1_000));
  assert.is((await deadLettersOf('gen-1')).length, 1, 'dead-lettered once, not also by the broker');
  assert.is(await ctx.broker.connected(), true);
  await client.publish(QUEUE, { kind: 'ok' }, { messageId: 'ok-2' });
  await waitFor(() => handled.has('ok-2'), 5_000, 'the worker to keep consuming');
});

test('an outage of one dependency: one delivery held, the rest parked and back later, none charged; others flow meanwhile', async () => {
  down.add('shard:9');
  const ids = Array.from({ length: 8 }, (_, i) => `park-${i}`);
  for (const id of ids) await client.publish(QUEUE, { kind: 'needs', scope: 'shard:9' }, { messageId: id });
  // With a prefetch of 4 and 8 messages of the failing dependency waiting, a healthy one still gets through at once.
  await waitFor(() => ids.every((id) => (calls.get(id)?.length ?? 0) >= 1), 10_000, 'every outage message tried once');
  const t0 = Date.now();
  await client.publish(QUEUE, { kind: 'needs', scope: 'shard:1' }, { messageId: 'healthy-1' });
  await waitFor(() => handled.has('healthy-1'), 3_000, 'the healthy message during the outage');
  assert.ok(Date.now() - t0 < 3_000);
  await new Promise((r) => setTimeout(r, 1_500));
  assert.ok(cameBack.size >= ids.length - 1, `all but the held one were parked and came back (${cameBack.size})`);
  down.delete('shard:9');
  await waitFor(() => ids.every((id) => handled.has(id)), 15_000, 'every outage message once the dependency is back');
  for (const id of ids)
    assert.ok(
      calls.get(id)!.every((n) => n === 0),
      `${id}: never charged a delivery (${calls.get(id)})`,
    );
  assert.is((await client.deadLetters()).filter((d) => String(d.props.messageId).startsWith('park-')).length, 0);
});

test('a queue deleted under a running consumer: it is declared again and consumed within 10 s', async () => {
  const ch = await conn.createChannel();
  await ch.deleteQueue(QUEUE);
  await ch.close();
  await waitFor(() => ctx.broker.consumers().some((c) => c.queue === QUEUE && !c.active), 5_000, 'the consumer to notice the cancel');
  const t0 = Date.now();
  await waitFor(() => ctx.broker.consumers().some((c) => c.queue === QUEUE && c.active), 10_000, 'the consumer to come back');
  await client.publish(QUEUE, { kind: 'ok' }, { messageId: 'after-delete' });
  await waitFor(() => handled.has('after-delete'), 10_000 - (Date.now() - t0), 'a message on the re-declared queue');
});

test.run();
