import { SpanKind, context, trace, type Tracer } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { extractTraceContext, injectTraceHeaders, startTracing, traceFields, type Tracing } from '../../infra/telemetry';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let tracer: Tracer;

test.before(() => {
  tracing = startTracing({ serviceName: 'test', processors: [new SimpleSpanProcessor(exporter)] });
  tracer = trace.getTracer('test');
});
test.after(async () => tracing.shutdown());

test('a producer span crosses AMQP headers: the consumer span is its child in the same trace', () => {
  const producer = tracer.startSpan('activity.partake publish', { kind: SpanKind.PRODUCER });
  const headers = context.with(trace.setSpan(context.active(), producer), () => injectTraceHeaders({ 'x-other': 1 }));
  producer.end();
  const { traceId, spanId } = producer.spanContext();
  assert.is(headers.traceparent, `00-${traceId}-${spanId}-01`);
  assert.is(headers['x-other'], 1);
  // amqplib may hand header strings back as Buffers.
  const received = { ...headers, traceparent: Buffer.from(String(headers.traceparent)) };
  const consumer = tracer.startSpan('activity.partake process', { kind: SpanKind.CONSUMER }, extractTraceContext(received));
  consumer.end();
  const done = exporter.getFinishedSpans().find((s) => s.name === 'activity.partake process')!;
  assert.is(done.spanContext().traceId, traceId);
  assert.is(done.parentSpanContext?.spanId, spanId);
});

test('the outbox envelope carries the cause: a task published later continues its trace', () => {
  const cause = tracer.startSpan('partake handle');
  const fields = context.with(trace.setSpan(context.active(), cause), () => traceFields());
  cause.end();
  assert.match(fields.traceparent ?? '', new RegExp(`^00-${cause.spanContext().traceId}-`));
  const relay = tracer.startSpan('partake.created publish', {}, extractTraceContext(fields));
  relay.end();
  assert.is(relay.spanContext().traceId, cause.spanContext().traceId);
});

test('no span, or a malformed traceparent: nothing injected, a new root trace', () => {
  assert.equal(injectTraceHeaders({ a: 'b' }), { a: 'b' });
  assert.equal(traceFields(), {});
  const ctx = extractTraceContext({ traceparent: '00-zz-not-a-trace-01' });
  assert.is(trace.getSpan(ctx), undefined);
  const root = tracer.startSpan('fresh', {}, ctx);
  root.end();
  const done = exporter.getFinishedSpans().find((s) => s.name === 'fresh')!;
  assert.is(done.parentSpanContext, undefined);
});

test.run();
