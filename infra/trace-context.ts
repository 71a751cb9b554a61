import { context, createContextKey, propagation, trace, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';

/**
 * W3C trace context over AMQP headers and the outbox envelope, and the log fields of a delivery,
 * on `@opentelemetry/api` alone (the client bundle and the logger import this, not the SDK). Without
 * a registered propagator (tracing never set up) inject and extract do nothing.
 */

/** The service's tracer: a no-op one until a tracer provider is registered (infra/telemetry.ts). */
export const tracer = () => trace.getTracer('activity-quota');

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

export type TraceFields = { traceparent?: string; tracestate?: string };

/** For the outbox envelope: the trace fields to store beside `{id, timestamp, data}`, so the relay's publish continues the cause's trace. */
export function traceFields(ctx: Context = context.active()): TraceFields {
  const c = injectTraceHeaders({}, ctx);
  return { ...(typeof c.traceparent === 'string' ? { traceparent: c.traceparent } : {}), ...(typeof c.tracestate === 'string' ? { tracestate: c.tracestate } : {}) };
}

const LOG_FIELDS = createContextKey('activity-quota log fields');

/** `ctx` whose log lines carry `fields` too (every logger's mixin reads them, infra/log.ts). */
export function withLogFields(fields: Record<string, unknown>, ctx: Context = context.active()): Context {
  const before = ctx.getValue(LOG_FIELDS) as Record<string, unknown> | undefined;
  return ctx.setValue(LOG_FIELDS, { ...before, ...fields });
}

/** What a log line written in `ctx` adds: the delivery's fields, and the trace and span ids when there is a span. */
export function logFieldsOf(ctx: Context = context.active()): Record<string, unknown> {
  const fields = ctx.getValue(LOG_FIELDS) as Record<string, unknown> | undefined;
  const span = trace.getSpanContext(ctx);
  if (!span || !trace.isSpanContextValid(span)) return fields ?? {};
  return { ...fields, trace_id: span.traceId, span_id: span.spanId };
}
