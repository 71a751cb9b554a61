import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ContractError, ReplyLostError, TimeoutError, UnroutableError, connect, type Client, type Event } from '../../infra/client';
import { EVENTS_EXCHANGE, QUEUES, TOPICS, declareTopology } from '../../infra/topology';
import { createTestEnv, type TestEnv } from '../support/env';
import { waitFor } from '../support/client';

/** The client's own behaviour against a real broker, with a stand-in worker where a reply is needed. */
let env: TestEnv;
let conn: ChannelModel;
let ch: Channel;
let client: Client;

const created = (orderId: string) => ({ orderId, userId: 'u', activityId: 1, strategyId: 2, orderTime: '2026-06-15T12:00:00.000Z' });
const emit = (key: string, id: string, data: unknown) =>
  ch.publish(EVENTS_EXCHANGE, key, Buffer.from(JSON.stringify({ id, timestamp: Date.now(), data })), { messageId: id, type: key, persistent: true });

/** Answers every request on `queue` with `reply`. */
async function fakeWorker(queue: string, reply: unknown): Promise<() => Promise<void>> {
  const { consumerTag } = await ch.consume(queue, (m) => {
    if (!m) return;
    ch.ack(m);
    if (m.properties.replyTo) ch.sendToQueue(m.properties.replyTo, Buffer.from(JSON.stringify(reply)), { correlationId: m.properties.correlationId });
  });
  return async () => void (await ch.cancel(consumerTag));
}

test.before(async () => {
  env = await createTestEnv();
  conn = await amqplib.connect(env.config.amqpUrl);
  ch = await conn.createChannel();
  client = await connect({ url: env.config.amqpUrl, timeoutMs: 2_000 });
});

test.after(async () => {
  await client?.close();
  await conn?.close().catch(() => undefined);
  await env?.cleanup();
});

test('before the topology exists: a recharge is refused as unroutable, not lost silently', async () => {
  try {
    await client.recharge({ userId: 'u', sku: 9011, outBusinessNo: 'o' });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, UnroutableError);
    assert.match((err as Error).message, QUEUES.recharge);
  }
  await declareTopology(ch, env.config);
  assert.type(await client.recharge({ userId: 'u', sku: 9011, outBusinessNo: 'o' }), 'string');
});

test('subscribe: one delivery per message id; an event off the contract goes to onError', async () => {
  const got: Event[] = [];
  const errors: Error[] = [];
  const every: string[] = [];
  const sub = await client.subscribe([TOPICS.partakeCreated], (e) => void got.push(e), { onError: (e) => errors.push(e) });
  const raw = await client.subscribe([TOPICS.partakeCreated], (e) => void every.push(e.id), { dedupe: false, validate: false });
  emit(TOPICS.partakeCreated, 'e-1', created('1'));
  emit(TOPICS.partakeCreated, 'e-1', created('1')); // the relay published it twice
  emit(TOPICS.partakeCreated, 'e-2', created('2'));
  emit(TOPICS.partakeCreated, 'e-3', { orderId: '3' }); // not the contract's partake.created
  await waitFor(() => every.length === 4, 5_000, 'four deliveries');
  await waitFor(() => got.length + errors.length === 3, 5_000, 'three handled');
  assert.equal(
    got.map((e) => [e.type, e.id, (e.data as { orderId: string }).orderId]),
    [
      [TOPICS.partakeCreated, 'e-1', '1'],
      [TOPICS.partakeCreated, 'e-2', '2'],
    ],
  );
  assert.is(errors.length, 1);
  assert.instance(errors[0], ContractError);
  assert.match(errors[0]!.message, 'userId');
  await sub.close();
  await raw.close();
});

test('request/reply: typed reply, a timeout, a reply off the contract; Direct Reply-to as an option', async () => {
  const timedOut = await client.query({ userId: 'u', activityId: 1 }, { timeoutMs: 300 }).catch((e: unknown) => e);
  assert.instance(timedOut, TimeoutError);
  const quota = { totalCount: 1, totalCountSurplus: 1, dayCount: 1, dayCountSurplus: 1, monthCount: 1, monthCountSurplus: 1 };
  let stop = await fakeWorker(QUEUES.accountQuery, { code: '0000', info: 'success', data: quota });
  assert.equal(await client.query({ userId: 'u', activityId: 1 }), { code: '0000', info: 'success', data: quota });
  const direct = await connect({ url: env.config.amqpUrl, replyTo: 'direct' });
  assert.equal((await direct.query({ userId: 'u', activityId: 1 })).code, '0000');
  await direct.close();
  await stop();
  stop = await fakeWorker(QUEUES.accountQuery, { code: '0000', info: 'success', data: { totalCount: -1 } });
  const off = await client.query({ userId: 'u', activityId: 1 }).catch((e: unknown) => e);
  assert.instance(off, ContractError);
  await stop();
  stop = await fakeWorker(QUEUES.partake, { code: 'ERR_BIZ_005', info: 'a recharge code, never a partake reply' });
  assert.instance(await client.partake({ userId: 'u', activityId: 1 }).catch((e: unknown) => e), ContractError);
  await stop();
});

test('a request sent whose connection closes before the reply: ReplyLostError, not a timeout', async () => {
  const other = await connect({ url: env.config.amqpUrl, timeoutMs: 10_000 });
  const started = Date.now();
  // Nobody consumes the queue (it exists: declared in the first test), so the request is confirmed and waits.
  const pending = other.query({ userId: 'u', activityId: 1 }).catch((e: unknown) => e);
  await waitFor(async () => (await ch.checkQueue(QUEUES.accountQuery)).messageCount > 0, 5_000, 'the request in its queue');
  await other.connection.close();
  const err = await pending;
  assert.instance(err, ReplyLostError);
  assert.ok(Date.now() - started < 5_000, 'rejected at the close, not at the timeout');
  await other.close();
});

test.run();
