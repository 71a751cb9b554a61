import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decide, failuresOf, type ConsumerState } from '../../infra/amqp/policy';
import type { Failure } from '../../infra/errors';

const state = (o: Partial<ConsumerState> = {}): ConsumerState => ({ stopping: false, deliveryLimit: 5, held: new Map(), outageHold: 2, canPark: true, ...o });
const outage = (scope = 'shard:2'): Failure => ({ kind: 'transient', scope, outage: true, reason: 'down' });
const contention: Failure = { kind: 'transient', scope: 'shard:1', outage: false, reason: 'deadlock' };
const bug: Failure = { kind: 'unknown', reason: 'boom' };

test('success acks; a permanent failure is dead-lettered with its code and reason', () => {
  assert.equal(decide(undefined, { failures: 3, attempt: 0 }, state()), { kind: 'ack' });
  assert.equal(decide({ kind: 'permanent', code: 'INVALID_MESSAGE', reason: 'sku must be a number' }, { failures: 0, attempt: 0 }, state()), {
    kind: 'dead-letter',
    code: 'INVALID_MESSAGE',
    reason: 'sku must be a number',
  });
});

test('an outage: held while the dependency has free hold slots, else parked (never counted)', () => {
  assert.equal(decide(outage(), { failures: 1, attempt: 0 }, state()).kind, 'hold');
  const full = state({ held: new Map([['shard:2', 2]]) });
  assert.equal(decide(outage(), { failures: 1, attempt: 0 }, full), { kind: 'park', scope: 'shard:2', failures: 1 });
  assert.is(decide(outage('shard:1'), { failures: 0, attempt: 0 }, full).kind, 'hold', 'another shard has its own slots');
  assert.is(decide(outage(), { failures: 0, attempt: 4, holding: 'shard:2' }, full).kind, 'hold', 'a held delivery keeps probing');
  assert.is(decide(outage(), { failures: 0, attempt: 0 }, { ...full, canPark: false }).kind, 'hold', 'no broker to park on');
  const o = decide(outage(), { failures: 0, attempt: 10 }, state());
  assert.equal(o, { kind: 'hold', scope: 'shard:2', delayMs: 5_000 }, 'backoff capped');
});

test('contention is retried in place, quickly', () => {
  const o = decide(contention, { failures: 0, attempt: 0 }, state({ held: new Map([['shard:1', 99]]) }));
  assert.equal(o, { kind: 'hold', scope: 'shard:1', delayMs: 20 });
});

test("the message's own failure: reject-requeue (counted on 3.x and 4.3+) until the limit, then dead-letter", () => {
  assert.equal(decide(bug, { failures: 0, attempt: 0 }, state()), { kind: 'requeue', how: 'reject', delayMs: 200 });
  assert.is(decide(bug, { failures: 3, attempt: 0 }, state()).kind, 'requeue');
  assert.equal(decide(bug, { failures: 4, attempt: 0 }, state()), { kind: 'dead-letter', code: 'HANDLER_FAILED', reason: 'failed 5 times: boom' });
});

test("while stopping, every failure goes back with nack (not the message's fault)", () => {
  for (const f of [bug, outage(), contention]) assert.equal(decide(f, { failures: 0, attempt: 0 }, state({ stopping: true })), { kind: 'requeue', how: 'nack', delayMs: 0 });
  assert.equal(decide(undefined, { failures: 0, attempt: 0 }, state({ stopping: true })), { kind: 'ack' });
});

test('own failures: the broker count plus what parking carried', () => {
  assert.is(failuresOf(undefined), 0);
  assert.is(failuresOf({ 'x-delivery-count': 2 }), 2);
  assert.is(failuresOf({ 'x-delivery-count': 1, 'x-aq-failures': 3 }), 4);
  assert.is(failuresOf({ 'x-aq-failures': 'junk' }), 0);
});

test.run();
