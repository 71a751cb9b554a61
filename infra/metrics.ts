import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process; `/metrics` of every worker serves it (infra/health.ts). */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const messagesTotal = new Counter({
  name: 'aq_messages_total',
  help: 'Deliveries handled by the consumer loop, by queue and outcome (ack, dead_letter, retry = a held handler run again, park = sent to wait on the park queue, requeue)',
  labelNames: ['queue', 'outcome'] as const,
  registers: [registry],
});

export const handlerDuration = new Histogram({
  name: 'aq_handler_duration_seconds',
  help: 'Time one handler call took, by queue',
  labelNames: ['queue'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const consumerActive = new Gauge({
  name: 'aq_consumer_active',
  help: 'Whether this process consumes the queue right now (1) or not (0: broker away, consumer cancelled, subscribing again)',
  labelNames: ['queue'] as const,
  registers: [registry],
});

export const circuitOpen = new Gauge({
  name: 'aq_shard_circuit_open',
  help: 'Whether the circuit of a database is open or probing (1) or closed (0); shard is the scope: shard:N or global',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const groupSize = new Histogram({
  name: 'aq_group_commit_units',
  help: 'Units (messages) per shard transaction of the group committer',
  buckets: [1, 2, 4, 8, 16, 32, 64],
  registers: [registry],
});

export const dbStatements = new Counter({
  name: 'aq_db_statements_total',
  help: 'Statements sent to a database (BEGIN and COMMIT included; each is one round trip), by db scope: shard:N or global',
  labelNames: ['db'] as const,
  registers: [registry],
});

export const outboxPublished = new Counter({
  name: 'aq_outbox_published_total',
  help: 'Outbox tasks published and confirmed, by path (fast = right after commit, cron = relay)',
  labelNames: ['path'] as const,
  registers: [registry],
});

export const brokerReconnects = new Counter({
  name: 'aq_broker_reconnects_total',
  help: 'Broker connections set up again after the first one (a cut, stalled or restarted broker path)',
  registers: [registry],
});

export const outboxFailures = new Counter({
  name: 'aq_outbox_publish_failures_total',
  help: 'Outbox publishes that failed, by kind (unroutable, nack, timeout, disconnected)',
  labelNames: ['kind'] as const,
  registers: [registry],
});

/** The outbox of one shard as the gauges read it on scrape (infra/outbox.ts answers; metrics imports no SQL). */
export type OutboxReader = Readonly<{
  shard: number;
  /** Tasks not yet completed, by state. */
  counts(): Promise<Record<string, number>>;
  /** Age of the oldest task still to be published, in seconds. */
  lagSeconds(): Promise<number>;
}>;

// Outbox gauges are read from the shards on scrape; every process that serves /metrics adds its shards.
const outboxSources = new Set<readonly OutboxReader[]>();
const OPEN_STATES = ['create', 'fail', 'dead'];

new Gauge({
  name: 'aq_outbox_tasks',
  help: 'Outbox tasks not yet completed, by shard and state (create, fail, dead)',
  labelNames: ['shard', 'state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const shards of outboxSources) {
      for (const s of shards) {
        const counts = await s.counts().catch((): Record<string, number> => ({}));
        for (const state of OPEN_STATES) this.set({ shard: String(s.shard), state }, counts[state] ?? 0);
      }
    }
  },
});

new Gauge({
  name: 'aq_outbox_lag_seconds',
  help: 'Age of the oldest task still to be published (create or fail), by shard; 0 when none',
  labelNames: ['shard'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const shards of outboxSources) {
      for (const s of shards) this.set({ shard: String(s.shard) }, await s.lagSeconds().catch(() => 0));
    }
  },
});

/** Adds the outbox gauges of these shards to `/metrics`; the returned function removes them. */
export function watchOutbox(shards: readonly OutboxReader[]): () => void {
  outboxSources.add(shards);
  return () => void outboxSources.delete(shards);
}
