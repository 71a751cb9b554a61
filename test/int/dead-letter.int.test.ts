import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEAD_LETTER_QUEUE, QUEUES } from '../../infra/topology';
import { waitFor } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { npmScript, startWorker, type Running } from '../support/workers';

let world: TestEnv;
let worker: Running;
let conn: ChannelModel;
let ch: Channel;

test.before(async () => {
  world = await createTestEnv({ extra: { DELIVERY_LIMIT: '2' } });
  worker = await startWorker('task-compensation', world.config); // declares the topology, consumes activity.task.replay
  conn = await amqplib.connect(world.config.amqpUrl);
  ch = await conn.createChannel();
});

test.after(async () => {
  await worker?.stop();
  await conn?.close().catch(() => undefined);
  await world?.cleanup();
});

type Listed = { messageId?: string; queue?: string; reason: string; deaths: number; body: string };
const cli = (...args: string[]) => npmScript('dead-letter', args, world.env);
const list = async () => JSON.parse(await cli('list', '--json')) as Listed[];
const depth = async () => (await ch.checkQueue(DEAD_LETTER_QUEUE)).messageCount;

test('dead letters from the consumer loop and from the broker are listed with reasons, without losing them', async () => {
  // The worker refuses unparsable JSON: dead-lettered with x-error.
  ch.sendToQueue(QUEUES.taskReplay, Buffer.from('{not json'), { messageId: 'bad-json-1', persistent: true });
  await waitFor(async () => (await depth()) === 1, 10_000, 'the first dead letter');
  // Nobody consumes activity.partake here: we reject it until the broker's delivery limit dead-letters it.
  ch.sendToQueue(QUEUES.partake, Buffer.from(JSON.stringify({ userId: 'u1', activityId: 1 })), { messageId: 'poison-1', persistent: true });
  await waitFor(
    async () => {
      const m = await ch.get(QUEUES.partake, { noAck: false });
      if (m) ch.nack(m, false, true);
      return (await depth()) === 2;
    },
    10_000,
    'the broker to dead-letter the poison message',
  );

  const first = await list();
  assert.is(first.length, 2);
  const [bad, poison] = first;
  assert.is(bad!.messageId, 'bad-json-1');
  assert.is(bad!.queue, QUEUES.taskReplay);
  assert.match(bad!.reason, /^INVALID_JSON: /);
  assert.is(bad!.deaths, 1);
  assert.is(bad!.body, '{not json');
  assert.is(poison!.messageId, 'poison-1');
  assert.is(poison!.queue, QUEUES.partake);
  assert.is(poison!.reason, 'broker: delivery_limit');
  assert.ok(poison!.deaths >= 1);
  // Listing again shows the same, in the same order: nothing lost, duplicated or moved.
  assert.equal(await list(), first);
  assert.is(await depth(), 2);
  const table = await cli('list');
  assert.match(table, /message_id\s+queue\s+reason\s+deaths\s+body/);
  assert.match(table, /poison-1\s+activity\.partake\s+broker: delivery_limit/);
});

test('requeue --id sends one dead letter back to its queue, clean of its death headers', async () => {
  const out = JSON.parse(await cli('requeue', '--id', 'poison-1', '--json'));
  assert.equal(out.requeued, [{ messageId: 'poison-1', queue: QUEUES.partake }]);
  const m = await waitFor(async () => (await ch.get(QUEUES.partake, { noAck: false })) || undefined, 5_000, 'the requeued message');
  ch.ack(m); // the cause is fixed: this time it is processed
  assert.is(m.properties.messageId, 'poison-1');
  assert.equal(JSON.parse(m.content.toString()), { userId: 'u1', activityId: 1 });
  const h = m.properties.headers ?? {};
  assert.is(h['x-death'], undefined);
  assert.is(h['x-error'], undefined);
  assert.is(h['x-requeued-count'], 1);
  assert.is(h['x-last-error'], 'broker: delivery_limit');
  const left = await list();
  assert.equal(
    left.map((l) => l.messageId),
    ['bad-json-1'],
  );
});

test('requeue without ids sends all back; a message whose cause persists is dead-lettered again', async () => {
  const out = JSON.parse(await cli('requeue', '--json'));
  assert.equal(out.requeued, [{ messageId: 'bad-json-1', queue: QUEUES.taskReplay }]);
  const again = await waitFor(
    async () => {
      const l = await list();
      return l.length === 1 && l;
    },
    10_000,
    'the message to come back',
  );
  assert.is(again[0]!.messageId, 'bad-json-1');
  assert.match(again[0]!.reason, /^INVALID_JSON: /);
  const unknown = JSON.parse(await cli('requeue', '--id', 'nope', '--json'));
  assert.equal(unknown, { requeued: [], kept: [{ messageId: 'nope', why: 'not found' }] });
  assert.is(await depth(), 1);
});

test.run();
