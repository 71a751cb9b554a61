import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Broker } from './amqp';
import { probe } from './db';
import type { Logger } from './log';
import { registry, watchOutbox } from './metrics';
import { countOpenTasks, outboxLagSeconds } from './outbox';
import type { Redis } from './redis';
import type { Databases } from './shards';

export type OpsServer = Readonly<{ port: number; close(): Promise<void> }>;
type Deps = Readonly<{ broker: Broker; dbs: Databases; redis: Redis; log: Logger }>;

const CHECK_TIMEOUT_MS = 2_000;

/**
 * What /healthz reports: each dependency reachable or the error, and each queue this worker
 * consumes (`consumer:<queue>`: ok, or not consuming); `ok` only when all are.
 */
export async function checkHealth(d: Deps): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const probes: Array<[string, () => Promise<unknown>]> = [
    [
      'broker',
      async () => {
        if (!d.broker.connected()) throw new Error('not connected');
      },
    ],
    ['db:global', () => probe(d.dbs.global)],
    ...d.dbs.shards.map((s): [string, () => Promise<unknown>] => [`db:shard${s.shard}`, () => probe(s.ds)]),
    ['redis', () => d.redis.ping()],
    ...d.broker.consumers().map((c): [string, () => Promise<unknown>] => [
      `consumer:${c.queue}`,
      async () => {
        if (!c.active) throw new Error('not consuming');
      },
    ]),
  ];
  const results = await Promise.all(
    probes.map(async ([name, probe]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([probe(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS)))]);
        return [name, 'ok'] as const;
      } catch (err) {
        return [name, String((err as Error)?.message ?? err)] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
}

/** Whether every consumer of this process is active (the broker connected, each queue's consumer subscribed). */
export function checkConsumers(d: Pick<Deps, 'broker'>): { ok: boolean; consumers: Record<string, string> } {
  const list = d.broker.consumers();
  const consumers = Object.fromEntries(list.map((c) => [c.queue, c.active ? 'active' : 'inactive']));
  return { ok: d.broker.connected() && list.length > 0 && list.every((c) => c.active), consumers };
}

/** /readyz: dependencies reachable (as /healthz) and consumers active; a balancer or orchestrator sends work only then. */
export async function checkReady(d: Deps): Promise<{ ok: boolean; checks: Record<string, string>; consumers: Record<string, string> }> {
  const health = await checkHealth(d);
  const consumers = checkConsumers(d);
  return { ok: health.ok && consumers.ok, checks: health.checks, consumers: consumers.consumers };
}

/**
 * Serves on `port`: `/livez` (200 while the process runs: restart it only when this fails),
 * `/readyz` (200 or 503: dependencies and consumers), `/healthz` (200 or 503: dependencies, as
 * JSON) and `/metrics` (Prometheus text).
 */
export async function serveOps(d: Deps, port: number): Promise<OpsServer> {
  const unwatch = watchOutbox(d.dbs.shards.map((s) => ({ shard: s.shard, counts: () => countOpenTasks(s.ds), lagSeconds: () => outboxLagSeconds(s.ds) })));
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = async () => {
      if (path === '/livez') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, uptimeSeconds: Math.round(process.uptime()) }));
      } else if (path === '/readyz') {
        const r = await checkReady(d);
        res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r));
      } else if (path === '/healthz') {
        const h = await checkHealth(d);
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
      } else if (path === '/metrics') {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /livez, /readyz, /healthz or /metrics\n');
      }
    };
    answer().catch((err) => {
      d.log.warn({ err, path }, 'ops request failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, () => resolve());
    });
  } catch (err) {
    unwatch();
    throw err;
  }
  server.on('error', (err) => d.log.warn({ err }, 'ops server error'));
  const actual = (server.address() as AddressInfo).port;
  d.log.info({ port: actual }, 'serving /livez, /readyz, /healthz and /metrics');
  return {
    port: actual,
    async close() {
      unwatch();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
