import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runDelivery, type DeliveryEnv, type Handler, type Settle } from '../../infra/amqp/consumer';
import { PermanentError, TransientError } from '../../infra/errors';

/** A channel that records what the loop did with each delivery. */
function fakeChannel() {
  const done: string[] = [];
  const ch: Settle = {
    ack: (m) => void done.push(`ack ${m.properties.messageId}`),
    reject: (m, requeue) => void done.push(`reject${requeue ? '-requeue' : ''} ${m.properties.messageId}`),
    nack: (m, _all, requeue) => void done.push(`nack${requeue ? '-requeue' : ''} ${m.properties.messageId}`),
  };
  return { ch, done };
}

const msg = (id: string, headers: Record<string, unknown> = {}): ConsumeMessage =>
  ({
    content: Buffer.from('{}'),
    fields: { exchange: '', routingKey: 'q', deliveryTag: 1, redelivered: false, consumerTag: 't' },
    properties: { messageId: id, headers },
  }) as unknown as ConsumeMessage;

function env(handler: Handler, o: Partial<DeliveryEnv> = {}) {
  const copies: string[] = [];
  const e: DeliveryEnv = {
    queue: 'q',
    handler,
    publisher: {
      connected: () => true,
      async park(m, queue, failures, why) {
        copies.push(`park ${m.properties.messageId} -> ${queue} failures=${failures} (${why})`);
      },
      async deadLetter(m, queue, code, reason) {
        copies.push(`dead-letter ${m.properties.messageId} from ${queue}: ${code}: ${reason}`);
      },
    },
    log: pino({ level: 'silent' }),
    deliveryLimit: 3,
    outageHold: 1,
    stopping: () => false,
    held: new Map(),
    live: () => true,
    sleep: async () => undefined,
    ...o,
  };
  return { e, copies };
}

const down = () => new TransientError('shard:2', 'outage', 'shard:2: connection refused');

test('success acks on the delivering channel', async () => {
  const { ch, done } = fakeChannel();
  assert.is(await runDelivery(env(async () => undefined).e, ch, msg('a')), 'ack');
  assert.equal(done, ['ack a']);
});

test('invalid input: one confirmed dead-letter copy, then ack', async () => {
  const { ch, done } = fakeChannel();
  const { e, copies } = env(async () => {
    throw new PermanentError('INVALID_MESSAGE', 'userId must be a non-empty string');
  });
  assert.is(await runDelivery(e, ch, msg('b')), 'dead-letter');
  assert.equal(copies, ['dead-letter b from q: INVALID_MESSAGE: userId must be a non-empty string']);
  assert.equal(done, ['ack b']);
});

test('an outage: the first delivery is held and retried until the dependency is back; the next is parked', async () => {
  let fail = 3;
  const { e, copies } = env(async () => {
    if (fail-- > 0) throw down();
  });
  const held = fakeChannel();
  const first = runDelivery(e, held.ch, msg('c'));
  // While `c` holds shard:2's only slot, `d` (also for shard 2) is parked.
  const parked = fakeChannel();
  const second = await runDelivery(
    {
      ...e,
      handler: async () => {
        throw down();
      },
    },
    parked.ch,
    msg('d', { 'x-delivery-count': 1 }),
  );
  assert.is(await first, 'ack');
  assert.equal(held.done, ['ack c']);
  assert.is(second, 'park');
  assert.equal(copies, ['park d -> q failures=1 (shard:2)']);
  assert.equal(parked.done, ['ack d']);
  assert.equal([...e.held.values()], [0], 'the hold slot is free again');
});

test('a bug: reject-requeue until the delivery limit, then HANDLER_FAILED', async () => {
  const failing = env(async () => {
    throw new Error('boom');
  });
  const a = fakeChannel();
  assert.is(await runDelivery(failing.e, a.ch, msg('e', { 'x-delivery-count': 1 })), 'requeue');
  assert.equal(a.done, ['reject-requeue e']);
  const b = fakeChannel();
  assert.is(await runDelivery(failing.e, b.ch, msg('e', { 'x-delivery-count': 2 })), 'dead-letter');
  assert.equal(failing.copies, ['dead-letter e from q: HANDLER_FAILED: failed 3 times: boom']);
  assert.equal(b.done, ['ack e']);
});

test('a dead-letter copy the broker does not confirm: the delivery is kept and tried again, never acked before', async () => {
  let refusals = 2;
  const { e } = env(async () => {
    throw new PermanentError('INVALID_JSON', 'x');
  });
  const pub = {
    ...e.publisher,
    async deadLetter() {
      if (refusals-- > 0) throw new TransientError('broker', 'outage', 'broker: not connected');
    },
  };
  const { ch, done } = fakeChannel();
  assert.is(await runDelivery({ ...e, publisher: pub }, ch, msg('f')), 'dead-letter');
  assert.equal(done, ['ack f']);
});

test('a channel gone while holding: nothing is settled (the broker redelivers)', async () => {
  let alive = true;
  const { e } = env(
    async () => {
      alive = false;
      throw down();
    },
    { live: () => alive },
  );
  const { ch, done } = fakeChannel();
  assert.is(await runDelivery(e, ch, msg('g')), 'stale');
  assert.equal(done, []);
});

test('stopping: a failure goes back with nack, a success is acked', async () => {
  const { e } = env(
    async () => {
      throw down();
    },
    { stopping: () => true },
  );
  const { ch, done } = fakeChannel();
  assert.is(await runDelivery(e, ch, msg('h')), 'requeue');
  assert.equal(done, ['nack-requeue h']);
});

test.run();
