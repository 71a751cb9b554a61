import amqplib, { type ChannelModel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PermanentError } from '../../infra/errors';
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
const handled = new Set<string>();

test.before(async () => {
  world = await createTestEnv({ extra: { DELIVERY_LIMIT: '3' } });
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
    if (body.kind === 'permanent') throw new PermanentError('INVALID_MESSAGE', 'kind permanent is refused');
    if (body.kind === 'transient' && seen.length <= body.failTimes) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    if (body.kind === 'generic') throw new Error('handler bug');
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
  assert.is((await ctx.broker.connected()), true);
  await client.publish(QUEUE, { kind: 'ok' }, { messageId: 'ok-2' });
  await waitFor(() => handled.has('ok-2'), 5_000, 'the worker to keep consuming');
});

test.run();
