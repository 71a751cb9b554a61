import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runDelivery, type DeliveryEnv } from '../../infra/amqp/consumer';
import { registerContext, unregisterContext } from '../../infra/telemetry';
import { logFieldsOf, traceFields } from '../../infra/trace-context';

/** A worker without an OTLP endpoint: no tracer provider, only the context manager and the propagator (as every worker registers). */
test.before(() => registerContext());
test.after(() => unregisterContext());

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

const delivery = (headers: Record<string, unknown>): ConsumeMessage =>
  ({
    content: Buffer.from('{}'),
    fields: { exchange: '', routingKey: 'q', deliveryTag: 1, redelivered: false, consumerTag: 't' },
    properties: { messageId: 'm-1', correlationId: 'c-1', headers },
  }) as unknown as ConsumeMessage;

function env(handler: DeliveryEnv['handler']): DeliveryEnv {
  return {
    queue: 'q',
    handler,
    publisher: { connected: () => true, park: async () => undefined, deadLetter: async () => undefined },
    log: pino({ level: 'silent' }),
    deliveryLimit: 3,
    outageHold: 1,
    stopping: () => false,
    held: new Map(),
    live: () => true,
    sleep: async () => undefined,
  };
}

const settle = { ack: () => undefined, reject: () => undefined, nack: () => undefined };

test("no spans recorded, yet the caller's trace id reaches the envelope and every log line of the delivery", async () => {
  let seen: { envelope: ReturnType<typeof traceFields>; log: Record<string, unknown> } | undefined;
  const outcome = await runDelivery(
    env(async () => {
      await new Promise((r) => setTimeout(r, 1)); // across an await, as a handler's database call would be
      seen = { envelope: traceFields(), log: logFieldsOf() };
    }),
    settle,
    delivery({ traceparent: Buffer.from(`00-${TRACE}-${PARENT}-01`) }),
  );
  assert.is(outcome, 'ack');
  assert.is(seen!.envelope.traceparent, `00-${TRACE}-${PARENT}-01`);
  assert.equal(seen!.log, { messageId: 'm-1', correlationId: 'c-1', trace_id: TRACE, span_id: PARENT });
  assert.equal(logFieldsOf(), {}, 'nothing left behind after the delivery');
});

test('no traceparent: the log lines still carry the ids, the envelope no trace', async () => {
  let seen: { envelope: ReturnType<typeof traceFields>; log: Record<string, unknown> } | undefined;
  await runDelivery(
    env(async () => void (seen = { envelope: traceFields(), log: logFieldsOf() })),
    settle,
    delivery({}),
  );
  assert.equal(seen!.envelope, {});
  assert.equal(seen!.log, { messageId: 'm-1', correlationId: 'c-1' });
});

test.run();
