import { context, propagation, trace, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';

/**
 * OpenTelemetry set-up and W3C trace-context propagation over AMQP headers and the outbox envelope.
 * Not wired into the consumer loop or the relay yet (both are being rewritten); the helpers are
 * what they will call: inject on publish, extract on consume, carry through the task row.
 */

export type Tracing = Readonly<{ shutdown(): Promise<void> }>;

/** Registers a global tracer provider with the W3C `traceparent` propagator; spans go to `processors` (e.g. a BatchSpanProcessor + OTLP exporter). */
export function startTracing(o: { serviceName: string; processors: SpanProcessor[] }): Tracing {
  const provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': o.serviceName }), spanProcessors: o.processors });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

type Carrier = Record<string, unknown>;

/** amqplib gives header strings as strings or Buffers. */
const getter: TextMapGetter<Carrier> = {
  keys: (c) => Object.keys(c),
  get: (c, key) => {
    const v = c[key];
    return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
  },
};
const setter: TextMapSetter<Carrier> = { set: (c, key, value) => void (c[key] = value) };

/** `headers` plus `traceparent` (and `tracestate`) of `ctx`; unchanged when `ctx` has no span. */
export function injectTraceHeaders(headers: Carrier = {}, ctx: Context = context.active()): Carrier {
  const out = { ...headers };
  propagation.inject(ctx, out, setter);
  return out;
}

/** The context a consumer continues: the remote parent from `headers`, or `base` when there is none (or it is malformed). */
export function extractTraceContext(headers: Carrier | undefined, base: Context = context.active()): Context {
  return propagation.extract(base, headers ?? {}, getter);
}

/** For the outbox envelope: the trace fields to store beside `{id, timestamp, data}`, so the relay's publish continues the cause's trace. */
export function traceFields(ctx: Context = context.active()): { traceparent?: string; tracestate?: string } {
  const c = injectTraceHeaders({}, ctx);
  return { ...(typeof c.traceparent === 'string' ? { traceparent: c.traceparent } : {}), ...(typeof c.tracestate === 'string' ? { tracestate: c.tracestate } : {}) };
}
