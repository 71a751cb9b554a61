import fs from 'node:fs';
import path from 'node:path';
import { alive, layout, sh, worldEnv, type Layout } from './layout';
import { downPg, pgStatus, upPg } from './pg-server';
import { downRabbit, rabbitStatus, upRabbit } from './rabbit-nodes';
import { downRedis, redisHealthy, redisNodes, redisPid, upRedis } from './redis-nodes';

/**
 * The local cluster world (issue 15): 3 RabbitMQ nodes in one cluster, a Redis Cluster of 3
 * masters + 3 replicas, and a second PostgreSQL server, so that 4 shard databases live on 2
 * servers. Built from Debian's packages (installed if missing); idempotent; `clusterDown()` stops
 * what it started (by pid and node name) and removes its data. Tests and the bench import this.
 */
export type ClusterWorld = Readonly<{ layout: Layout; env: Record<string, string>; startMs: number }>;

export type Say = (line: string) => void;
export type Part = 'rabbitmq' | 'redis' | 'postgresql';
const ALL_PARTS: readonly Part[] = ['rabbitmq', 'redis', 'postgresql'];
const quiet: Say = () => undefined;
const MARKER = '.aq-cluster-world';

const PACKAGES: Array<[binary: string, pkg: string]> = [
  ['/usr/bin/redis-server', 'redis-server'],
  ['/usr/bin/redis-cli', 'redis-tools'],
  ['/usr/lib/rabbitmq/bin/rabbitmq-server', 'rabbitmq-server'],
  ['/usr/bin/pg_createcluster', 'postgresql-common'],
];

/** apt-get installs what is missing (once `apt-get update`); nothing when all is there. */
async function ensureInstalled(l: Layout, say: Say): Promise<void> {
  const missing = PACKAGES.filter(([bin]) => !fs.existsSync(bin)).map(([, pkg]) => pkg);
  if (!fs.existsSync(`/usr/lib/postgresql/${l.pg.version}/bin/postgres`)) missing.push(`postgresql-${l.pg.version}`);
  if (!missing.length) return;
  say(`installing ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await sh('apt-get', ['update'], { env, timeoutMs: 300_000 });
  await sh('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 });
}

/** Brings the world (or only some `parts` of it) up; a part that already runs is left as it is. */
export async function clusterUp(o: { say?: Say; layout?: Layout; parts?: readonly Part[] } = {}): Promise<ClusterWorld> {
  const say = o.say ?? quiet;
  const l = o.layout ?? layout();
  const parts = o.parts ?? ALL_PARTS;
  const t0 = Date.now();
  await ensureInstalled(l, say);
  fs.mkdirSync(l.dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(l.dir, 0o755); // the postgres user must reach its data folder inside
  fs.writeFileSync(path.join(l.dir, MARKER), `${new Date().toISOString()}\n`);
  // The three start side by side; RabbitMQ takes longest.
  const up: Record<Part, () => Promise<void>> = { rabbitmq: () => upRabbit(l, say), redis: () => upRedis(l, say), postgresql: () => upPg(l, say) };
  const results = await Promise.allSettled(parts.map((p) => up[p]()));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${parts[i]}: ${(r.reason as Error).message}`] : []));
  if (failed.length) throw new Error(`cluster world not up:\n${failed.join('\n')}`);
  return { layout: l, env: worldEnv(l), startMs: Date.now() - t0 };
}

export type ClusterStatus = Readonly<{
  ready: boolean;
  rabbit: Awaited<ReturnType<typeof rabbitStatus>>;
  redis: ReadonlyArray<{ port: number; running: boolean; role?: string; slots?: string }>;
  redisHealthy: boolean;
  pg: Awaited<ReturnType<typeof pgStatus>>;
  env: Record<string, string>;
}>;

export async function clusterStatus(o: { layout?: Layout } = {}): Promise<ClusterStatus> {
  const l = o.layout ?? layout();
  const rabbit = await rabbitStatus(l);
  const nodes = await redisNodes(l).catch(() => []);
  const redis = l.redisPorts.map((port) => {
    const n = nodes.find((x) => x.port === port);
    return { port, running: alive(redisPid(l, port)), role: n ? `${n.role}${n.failed ? ' (failed)' : ''}` : undefined, slots: n?.slots.map(([a, b]) => `${a}-${b}`).join(',') };
  });
  const healthy = await redisHealthy(l).catch(() => false);
  const pg = await pgStatus(l);
  const ready = rabbit.every((r) => r.running && r.clustered.length === 3) && healthy && pg.status === 'online';
  return { ready, rabbit, redis, redisHealthy: healthy, pg, env: worldEnv(l) };
}

/** Stops every server of the world and removes its data (only a folder this world marked as its own). */
export async function clusterDown(o: { say?: Say; layout?: Layout } = {}): Promise<void> {
  const say = o.say ?? quiet;
  const l = o.layout ?? layout();
  const results = await Promise.allSettled([downRabbit(l), downRedis(l), downPg(l)]);
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${ALL_PARTS[i]}: ${(r.reason as Error).message}`] : []));
  if (fs.existsSync(path.join(l.dir, MARKER))) fs.rmSync(l.dir, { recursive: true, force: true });
  else if (fs.existsSync(l.dir)) say(`${l.dir} has no ${MARKER}: left in place`);
  if (failed.length) throw new Error(`cluster world not fully down:\n${failed.join('\n')}`);
}

export { layout, worldEnv, type Layout } from './layout';
export { holdReplication, killRedisNode, masterOfKey, redisNodes, replicaOf, startRedisNode, waitForPromotion, type RedisNode } from './redis-nodes';
export { killRabbitNode, quorumLeader, rabbitCli, startRabbitNode } from './rabbit-nodes';
export { stopPg, upPg } from './pg-server';
