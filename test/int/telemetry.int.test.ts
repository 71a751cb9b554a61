import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client, type Delivery } from '../../infra/client';
import { sql } from '../../infra/db';
import { replayTasks } from '../../infra/outbox';
import { openDatabases, type Databases } from '../../infra/shards';
import { startTracing, type Tracing } from '../../infra/telemetry';
import { QUEUES } from '../../infra/topology';
import { waitFor } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { spawnNpm, waitConsumers, type Service } from '../support/workers';

/**
 * One partake traced end to end through the real pipeline: a caller span in this process, the
 * typed client, the partake worker as its own process (`npm run worker`), its database
 * transaction, the outbox relay's publish, and a subscriber of the event. Spans of both processes
 * go to a small OTLP/HTTP (JSON) receiver in this process; the worker's log lines are read from its
 * stdout.
 */

const OPEN = 100301;

type Received = { service: string; traceId: string; spanId: string; parentSpanId: string; name: string; kind: number; attributes: Record<string, unknown> };

let env: TestEnv;
let dbs: Databases;
let receiver: http.Server;
let endpoint: string;
const spans: Received[] = [];
let tracing: Tracing;
let client: Client;
let worker: Service;
/** What the first test saw, for the second: the trace, its transaction span, the event's message id. */
let first: { traceId: string; txSpanId: string; sendSpanId: string; messageId: string } | undefined;

test.before(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.startsWith('application/json')) spans.push(...decode(JSON.parse(body)));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  env = await createTestEnv();
  dbs = openDatabases(env.config, { poolSize: 2, name: 'test' });
  await sql(
    dbs.global,
    `INSERT INTO raffle_activity (activity_id, activity_name, begin_date_time, end_date_time, strategy_id, state)
    VALUES ($1, 'Spring raffle', '2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z', 100006, 'open')`,
    [OPEN],
  );
  tracing = startTracing({ serviceName: 'test-caller', processors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))] });
  worker = startWorker('partake');
  client = await connect({ url: env.config.amqpUrl, timeoutMs: 10_000, name: 'test:telemetry' });
  await waitConsumers(checkQueue, [QUEUES.partake], 60_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${worker.output().slice(-3000)}`);
  });
});

test.after(async () => {
  await client?.close();
  await stopWorker();
  await tracing?.shutdown();
  await dbs?.close();
  await env?.cleanup();
  receiver?.close();
});

async function stopWorker(w: Service | undefined = worker): Promise<void> {
  if (!w || w.child.exitCode !== null) return;
  try {
    process.kill(-w.child.pid!, 'SIGTERM');
  } catch {
    return; // the group is gone already
  }
  await Promise.race([w.exited, new Promise((r) => setTimeout(r, 15_000))]);
}

const startWorker = (name: string) => spawnNpm(['run', '--silent', 'worker', '--', name], { ...env.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', LOG_LEVEL: 'debug' });

/** A check of a queue not declared yet closes its channel: one channel per check. */
async function checkQueue(q: string): Promise<{ consumerCount: number }> {
  const ch = await client.connection.createChannel();
  ch.on('error', () => undefined);
  try {
    return await ch.checkQueue(q);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

const spanOf = (service: string, name: string, traceId: string, also: (s: Received) => boolean = () => true) =>
  waitFor(
    () => spans.find((s) => s.service === service && s.name === name && s.traceId === traceId && also(s)),
    10_000,
    `span ${name} of ${service} in the trace (got ${JSON.stringify(spans.map((s) => `${s.service}/${s.name}`))})`,
  );

test('one trace runs caller -> client -> worker -> database -> event, and the handler log lines carry the message ids', async () => {
  const userId = 'traced-user';
  await sql(
    dbs.forUser(userId).ds,
    `INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
    VALUES ($1, $2, 10, 10, 3, 3, 6, 6)`,
    [userId, OPEN],
  );
  let event: Delivery | undefined;
  let subscriberSpan = '';
  const sub = await client.subscribe(['partake.created'], (e, d) => {
    if ((e.data as { userId?: string }).userId !== userId) return;
    event = d;
    subscriberSpan = trace.getActiveSpan()?.spanContext().spanId ?? '';
  });

  const caller = trace.getTracer('test').startSpan('caller', { kind: SpanKind.INTERNAL });
  const reply = await context.with(trace.setSpan(context.active(), caller), () => client.partake({ userId, activityId: OPEN }));
  caller.end();
  assert.is(reply.code, '0000');
  const traceId = caller.spanContext().traceId;
  await waitFor(() => event, 10_000, 'the partake.created event');
  await sub.close();

  // The event carries the trace in its AMQP headers, its body is the contract's envelope only.
  const traceparent = String(event!.properties.headers?.traceparent ?? '');
  assert.match(traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), `event traceparent ${traceparent}`);
  assert.equal(Object.keys(event!.body as object).sort(), ['data', 'id', 'timestamp']);

  await stopWorker(); // flushes the worker's spans
  const byName = (service: string, name: string) => spanOf(service, name, traceId);
  const request = await byName('test-caller', `request ${QUEUES.partake}`);
  const process_ = await byName('activity-quota-partake', `process ${QUEUES.partake}`);
  const tx = await byName('activity-quota-partake', 'transaction shard:' + shardOf(userId));
  const send = await byName('activity-quota-partake', 'send partake.created');
  const consume = await byName('test-caller', 'process partake.created');

  assert.is(request.parentSpanId, caller.spanContext().spanId, 'client span under the caller');
  assert.is(process_.parentSpanId, request.spanId, 'worker span under the client span (traceparent in the AMQP headers)');
  assert.is(process_.kind, 5, 'SPAN_KIND_CONSUMER');
  assert.is(tx.parentSpanId, process_.spanId, 'database span under the worker span');
  assert.is(tx.attributes['db.system.name'], 'postgresql');
  assert.is(send.parentSpanId, tx.spanId, 'relay publish under the database span (traceparent in the outbox envelope)');
  assert.is(traceparent, `00-${traceId}-${send.spanId}-01`, 'the published event carries the relay span');
  assert.is(consume.parentSpanId, send.spanId, 'subscriber span under the relay publish');
  assert.is(consume.spanId, subscriberSpan, 'the subscriber handler ran in its span');
  first = { traceId, txSpanId: tx.spanId, sendSpanId: send.spanId, messageId: String(event!.properties.messageId) };

  // Every log line the worker wrote while handling the message carries its ids, whichever logger wrote it.
  const messageId = process_.attributes['messaging.message.id'];
  const correlationId = process_.attributes['messaging.message.conversation_id'];
  assert.ok(typeof messageId === 'string' && typeof correlationId === 'string', JSON.stringify(process_.attributes));
  const lines = worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const handled = lines.filter((l) => l.trace_id === traceId);
  assert.ok(
    handled.some((l) => l.msg === 'raffle order created'),
    `no handler line in the trace:\n${worker.output().slice(-3000)}`,
  );
  for (const l of handled) {
    assert.is(l.messageId, messageId, JSON.stringify(l));
    assert.is(l.correlationId, correlationId, JSON.stringify(l));
  }
  assert.not.ok(
    lines.some((l) => l.msg === 'raffle order created' && l.trace_id !== traceId),
    'a handler line outside the trace',
  );
});

test("an event the cron relay publishes later (a replayed task) still continues its cause's trace, from the envelope in the task row", async () => {
  assert.ok(first, 'the first test ran');
  const { traceId, txSpanId, sendSpanId, messageId } = first!;
  const relay = startWorker('task-compensation');
  try {
    await waitConsumers(checkQueue, [QUEUES.taskReplay], 60_000);
    const copies: Delivery[] = [];
    const sub = await client.subscribe(['partake.created'], (_e, d) => void (d.properties.messageId === messageId && copies.push(d)), { dedupe: false });
    const replayed = await replayTasks(dbs.shards, { ids: [messageId] });
    assert.is(replayed.length, 1);
    await waitFor(() => copies.length, 15_000, 'the replayed partake.created');
    await sub.close();
    const traceparent = String(copies[0]!.properties.headers?.traceparent ?? '');
    await stopWorker(relay);
    const send = await spanOf('activity-quota-task-compensation', 'send partake.created', traceId);
    assert.is(send.parentSpanId, txSpanId, 'the cron relay span under the transaction span of the cause');
    assert.is.not(send.spanId, sendSpanId);
    assert.is(traceparent, `00-${traceId}-${send.spanId}-01`);
  } finally {
    await stopWorker(relay);
  }
});

const shardOf = (userId: string): number => dbs.forUser(userId).shard;

/** OTLP/JSON (`ExportTraceServiceRequest`) → flat spans; ids are hex in the JSON encoding. */
function decode(req: { resourceSpans?: Array<{ resource?: { attributes?: Attr[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> }): Received[] {
  const out: Received[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const service = String(attrs(rs.resource?.attributes)['service.name']);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          service,
          traceId: String(s.traceId),
          spanId: String(s.spanId),
          parentSpanId: String(s.parentSpanId ?? ''),
          name: String(s.name),
          kind: Number(s.kind),
          attributes: attrs(s.attributes as Attr[]),
        });
      }
    }
  }
  return out;
}

type Attr = { key: string; value: Record<string, unknown> };
function attrs(list: Attr[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] = v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue);
  }
  return out;
}

test.run();
