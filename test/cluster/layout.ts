import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * Where the local cluster world lives: node names, ports and folders, all its own (never the
 * machine's default RabbitMQ node, Redis or PostgreSQL cluster). Every value can be moved by env.
 */
export type Layout = Readonly<{
  /** Data, logs, pid files: removed by `down`. */
  dir: string;
  /** Prefix of node names, the PostgreSQL cluster name and the database names of the printed env. */
  name: string;
  rabbit: ReadonlyArray<Readonly<{ node: string; port: number; distPort: number }>>;
  /** 3 masters + 3 replicas (which is which is decided by `redis-cli --cluster create`, and by failovers). */
  redisPorts: readonly number[];
  pg: Readonly<{ version: string; cluster: string; port: number }>;
  /** The machine's PostgreSQL (two of the four shards and the global database live there). */
  pgBase: string;
}>;

export function layout(env: NodeJS.ProcessEnv = process.env): Layout {
  const name = env.AQ_CLUSTER_NAME?.trim() || 'aqc';
  if (!/^[a-z][a-z0-9]{1,15}$/.test(name) || name === 'rabbit' || name === 'main')
    throw new Error(`AQ_CLUSTER_NAME: ${JSON.stringify(name)} must be 2-16 lower-case letters/digits, not rabbit or main`);
  const amqp = int(env, 'AQ_CLUSTER_AMQP_PORT', 5701);
  const redis = int(env, 'AQ_CLUSTER_REDIS_PORT', 7101);
  return {
    dir: env.AQ_CLUSTER_DIR?.trim() || '/tmp/aq-cluster',
    name,
    rabbit: [0, 1, 2].map((i) => ({ node: `${name}${i + 1}@localhost`, port: amqp + i, distPort: amqp + i + 20_000 })),
    redisPorts: [0, 1, 2, 3, 4, 5].map((i) => redis + i),
    pg: { version: env.AQ_CLUSTER_PG_VERSION?.trim() || pgVersion(), cluster: name, port: int(env, 'AQ_CLUSTER_PG_PORT', 5433) },
    pgBase: (env.AQ_CLUSTER_PG_BASE?.trim() || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
  };
}

function int(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key]?.trim();
  const n = raw ? Number(raw) : fallback;
  if (!Number.isInteger(n) || n < 1024 || n > 45_000) throw new Error(`${key}: expected a port from 1024 to 45000, got ${JSON.stringify(raw)}`);
  return n;
}

/** The newest installed PostgreSQL major version (Debian: /usr/lib/postgresql/<v>). */
function pgVersion(): string {
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  return versions.sort((a, b) => Number(b) - Number(a))[0] ?? '15';
}

export const pgServerBase = (l: Layout) => `postgres://postgres@127.0.0.1:${l.pg.port}`;

/** What a test or `npm start` needs to use the world: the three brokers, the Redis Cluster seeds, and four shards on two PostgreSQL servers. */
export function worldEnv(l: Layout): Record<string, string> {
  const servers = [l.pgBase, pgServerBase(l)];
  const amqp = l.rabbit.map((r) => `amqp://guest:guest@127.0.0.1:${r.port}`);
  return {
    AMQP_URL: amqp.join(','),
    REDIS_URL: '',
    REDIS_CLUSTER_NODES: l.redisPorts.map((p) => `127.0.0.1:${p}`).join(','),
    DATABASE_URL: `${l.pgBase}/${l.name}`,
    // Shards 1 and 3 on the machine's server, 2 and 4 on the world's: users spread evenly over both.
    SHARD_DATABASE_URLS: [1, 2, 3, 4].map((i) => `${servers[(i - 1) % 2]}/${l.name}_${String(i).padStart(2, '0')}`).join(','),
    SHARD_TABLE_COUNT: '4',
    AQ_CLUSTER_PG_BASES: servers.join(','),
  };
}

export type Run = { stdout: string; stderr: string };

/** Runs a program; a failure carries its output. */
export async function sh(file: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  try {
    const r = await execFileP(file, args, { env: o.env ?? process.env, timeout: o.timeoutMs ?? 120_000, cwd: o.cwd, maxBuffer: 16 * 1024 * 1024 });
    return { stdout: String(r.stdout), stderr: String(r.stderr) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.message.split('\n')[0]}\n${e.stdout ?? ''}${e.stderr ?? ''}`.trim());
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined) or the time is up. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message.split('\n')[0] ?? '';
    }
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeoutMs} ms${last ? ` (${last})` : ''}`);
    await sleep(everyMs);
  }
}

/** True if a process with this pid exists (signal 0). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
