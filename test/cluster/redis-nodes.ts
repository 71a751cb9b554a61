import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { alive, readPid, sh, sleep, until, type Layout } from './layout';

/**
 * The world's Redis Cluster: six `redis-server --cluster-enabled` nodes (3 masters + 3 replicas,
 * no persistence: a node that restarts comes back empty and resyncs from its master, and an empty
 * counter is rebuilt from the ledger while a stale one could oversell).
 */
export type RedisNode = Readonly<{
  id: string;
  port: number;
  role: 'master' | 'replica';
  masterId: string | undefined;
  slots: ReadonlyArray<readonly [number, number]>;
  failed: boolean;
  connected: boolean;
}>;

const nodeDir = (l: Layout, port: number) => path.join(l.dir, 'redis', String(port));
const pidFile = (l: Layout, port: number) => path.join(nodeDir(l, port), 'redis.pid');
export const redisPid = (l: Layout, port: number) => readPid(pidFile(l, port));

export async function redisCli(port: number, args: string[], timeoutMs = 10_000): Promise<string> {
  return (await sh('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeoutMs })).stdout.trim();
}

/** Starts one node (daemonized) unless it runs; its nodes.conf brings it back into the cluster. */
export async function startRedisNode(l: Layout, port: number): Promise<boolean> {
  if (alive(redisPid(l, port))) return false;
  const dir = nodeDir(l, port);
  fs.mkdirSync(dir, { recursive: true });
  await sh('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--daemonize',
    'yes',
    '--dir',
    dir,
    '--pidfile',
    pidFile(l, port),
    '--logfile',
    path.join(dir, 'redis.log'),
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    path.join(dir, 'nodes.conf'),
    // A dead master is failed over within a few seconds; the other masters keep serving their slots.
    '--cluster-node-timeout',
    '2000',
    '--cluster-require-full-coverage',
    'no',
    '--save',
    '',
    '--appendonly',
    'no',
    // The tests hold replication back with DEBUG SLEEP (from this machine only).
    '--enable-debug-command',
    'local',
  ]);
  await until(`redis ${port} answers`, 10_000, async () => ((await redisCli(port, ['ping'])) === 'PONG' ? true : undefined), 100);
  return true;
}

/** `CLUSTER NODES` as seen by the first node that answers. */
export async function redisNodes(l: Layout): Promise<RedisNode[]> {
  let last: unknown;
  for (const port of l.redisPorts) {
    if (!alive(redisPid(l, port))) continue;
    try {
      return parseNodes(await redisCli(port, ['cluster', 'nodes'], 3_000));
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no node of the Redis Cluster answers${last ? `: ${(last as Error).message}` : ''}`);
}

export function parseNodes(text: string): RedisNode[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flags, master, , , , link, ...slots] = line.split(' ');
      const f = flags!.split(',');
      return {
        id: id!,
        port: Number(addr!.split('@')[0]!.split(':')[1]),
        role: f.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        slots: slots
          .filter((s) => /^\d/.test(s))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a!, b ?? a!] as const;
          }),
        failed: f.includes('fail') || f.includes('fail?'),
        connected: link === 'connected' || f.includes('myself'),
      };
    });
}

/** Starts the six nodes and, the first time, joins them (`redis-cli --cluster create`); then waits until every master has a synced replica. */
export async function upRedis(l: Layout, say: (s: string) => void): Promise<void> {
  const started = await Promise.all(l.redisPorts.map((p) => startRedisNode(l, p)));
  if (started.some(Boolean)) say(`redis: started ${started.filter(Boolean).length} node(s)`);
  const info = await redisCli(l.redisPorts[0]!, ['cluster', 'info']);
  if (!/cluster_slots_assigned:16384/.test(info)) {
    say('redis: creating the cluster (3 masters + 3 replicas)');
    await sh('redis-cli', ['--cluster', 'create', ...l.redisPorts.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeoutMs: 60_000 });
  }
  await until('redis cluster ok with a synced replica per master', 60_000, async () => (await redisHealthy(l)) || undefined, 250);
}

/** Every node up, cluster_state ok on each, three masters each with a replica whose link is up. */
export async function redisHealthy(l: Layout): Promise<boolean> {
  for (const p of l.redisPorts) {
    if (!alive(redisPid(l, p))) return false;
    if (!/cluster_state:ok/.test(await redisCli(p, ['cluster', 'info'], 3_000))) return false;
  }
  const nodes = await redisNodes(l);
  const masters = nodes.filter((n) => n.role === 'master' && n.slots.length && !n.failed);
  if (masters.length !== 3 || nodes.some((n) => n.failed)) return false;
  for (const m of masters) {
    const replica = nodes.find((n) => n.masterId === m.id);
    if (!replica || !/master_link_status:up/.test(await redisCli(replica.port, ['info', 'replication'], 3_000))) return false;
  }
  return true;
}

export async function downRedis(l: Layout): Promise<void> {
  await Promise.all(
    l.redisPorts.map(async (p) => {
      const pid = redisPid(l, p);
      if (!alive(pid)) return;
      await redisCli(p, ['shutdown', 'nosave'], 5_000).catch(() => undefined);
      await until(`redis ${p} stopped`, 5_000, async () => (alive(pid) ? undefined : true), 100).catch(() => process.kill(pid!, 'SIGKILL'));
    }),
  );
}

/** The master that serves `key`'s slot now (by the cluster's own view). */
export async function masterOfKey(l: Layout, key: string): Promise<RedisNode> {
  const live = l.redisPorts.find((p) => alive(redisPid(l, p)));
  if (!live) throw new Error('no Redis node runs');
  const slot = Number(await redisCli(live, ['cluster', 'keyslot', key]));
  const m = (await redisNodes(l)).find((n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
  if (!m) throw new Error(`no live master serves slot ${slot} of ${key}`);
  return m;
}

export async function replicaOf(l: Layout, master: RedisNode): Promise<RedisNode> {
  const r = (await redisNodes(l)).find((n) => n.masterId === master.id && !n.failed);
  if (!r) throw new Error(`master ${master.port} has no live replica`);
  return r;
}

/** kill -9 of one node (a crash: no shutdown, no save). */
export function killRedisNode(l: Layout, port: number): void {
  const pid = redisPid(l, port);
  if (!alive(pid)) throw new Error(`redis ${port} is not running`);
  process.kill(pid!, 'SIGKILL');
}

/**
 * Holds replication back on `replica` for `ms`: the replica sleeps (DEBUG SLEEP) and its master
 * drops the link, so nothing the master writes from now on reaches the replica, not even into its
 * socket buffer, until the replica wakes and resyncs. A WAIT on the master answers 0 meanwhile.
 */
export async function holdReplication(replica: RedisNode, master: RedisNode, ms: number): Promise<void> {
  const r = new Redis({ host: '127.0.0.1', port: replica.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  r.on('error', () => undefined);
  await r.connect();
  void r
    .call('DEBUG', 'SLEEP', String(ms / 1000))
    .catch(() => undefined)
    .finally(() => r.disconnect());
  await sleep(100);
  await redisCli(master.port, ['client', 'kill', 'type', 'replica']);
}

/** Waits until `key`'s slot is served by a master other than `oldPort` (a replica promoted); returns it. */
export async function waitForPromotion(l: Layout, key: string, oldPort: number, timeoutMs = 30_000): Promise<RedisNode> {
  return until(
    `a replica promoted for ${key}`,
    timeoutMs,
    async () => {
      const m = await masterOfKey(l, key);
      return m.port !== oldPort ? m : undefined;
    },
    200,
  );
}
