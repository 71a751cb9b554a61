import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { Config } from './config';

export { extractTraceContext, injectTraceHeaders, traceFields } from './trace-context';

/**
 * OpenTelemetry set-up of a process. The context manager and the W3C `traceparent` propagator are
 * always registered: a caller's trace id then passes through a worker to its events even when no
 * spans are exported, and each delivery's log fields live in the active context (infra/log.ts).
 * Spans are recorded and exported only with an OTLP endpoint (`startTelemetry`).
 */

export type Tracing = Readonly<{ shutdown(): Promise<void> }>;

let registered = false;

/** Registers the async-hooks context manager and the W3C trace-context propagator, once per process. */
export function registerContext(): void {
  if (registered) return;
  registered = true;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable(); // someone else's is there: keep it
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** Undoes `registerContext` (tests). */
export function unregisterContext(): void {
  propagation.disable();
  context.disable();
  registered = false;
}

/** Registers a global tracer provider (and the context manager and propagator); spans go to `processors`. */
export function startTracing(o: { serviceName: string; attributes?: Record<string, string>; processors: SpanProcessor[] }): Tracing {
  registerContext();
  const provider = new NodeTracerProvider({ resource: resourceFromAttributes({ ...o.attributes, 'service.name': o.serviceName }), spanProcessors: o.processors });
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      await provider.shutdown(); // exports what is still buffered
      trace.disable();
      unregisterContext();
    },
  };
}

/**
 * A worker's telemetry from its settings: with `otlpTracesUrl`, spans are batched and sent as
 * OTLP/HTTP (JSON) to it; without, only the context and propagation are registered (no span is
 * recorded). `shutdown()` sends the spans still buffered.
 */
export function startTelemetry(config: Pick<Config, 'otlpTracesUrl' | 'otelServiceName'>, worker: string): Tracing {
  registerContext();
  if (!config.otlpTracesUrl) return { shutdown: async () => undefined };
  return startTracing({
    serviceName: config.otelServiceName ?? `activity-quota-${worker}`,
    attributes: { 'service.namespace': 'activity-quota', 'service.instance.id': `${worker}:${process.pid}` },
    processors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpTracesUrl }))],
  });
}
