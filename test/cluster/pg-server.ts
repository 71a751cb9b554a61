import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { sh, until, type Layout } from './layout';

/**
 * The world's second PostgreSQL server: a Debian cluster of its own (`pg_createcluster <v> <name>`)
 * on its own port, data under the world's folder, trust auth on 127.0.0.1. The machine's `main`
 * cluster is never started, stopped or dropped here (the layout refuses the name `main`).
 */
type PgCluster = { version: string; cluster: string; port: number; status: string; dataDir: string };

async function lsclusters(): Promise<PgCluster[]> {
  const out = (await sh('pg_lsclusters', ['-h'])).stdout;
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [version, cluster, port, status, , dataDir] = line.split(/\s+/);
      return { version: version!, cluster: cluster!, port: Number(port), status: status!, dataDir: dataDir! };
    });
}

const ours = async (l: Layout) => (await lsclusters()).find((c) => c.version === l.pg.version && c.cluster === l.pg.cluster);
const dataDir = (l: Layout) => path.join(l.dir, 'postgresql', 'data');

export async function upPg(l: Layout, say: (s: string) => void): Promise<void> {
  let c = await ours(l);
  if (c && c.dataDir !== dataDir(l)) throw new Error(`PostgreSQL cluster ${l.pg.version}/${l.pg.cluster} exists with data in ${c.dataDir}, not this world's: drop it or set AQ_CLUSTER_NAME`);
  if (c && !fs.existsSync(path.join(dataDir(l), 'PG_VERSION'))) {
    await sh('pg_dropcluster', [l.pg.version, l.pg.cluster, '--stop']); // its data folder is gone: start over
    c = undefined;
  }
  if (!c) {
    say(`postgresql: creating cluster ${l.pg.version}/${l.pg.cluster} on port ${l.pg.port}`);
    const dir = path.join(l.dir, 'postgresql');
    fs.mkdirSync(dir, { recursive: true });
    const { uid, gid } = await postgresIds();
    fs.chownSync(dir, uid, gid);
    await sh(
      'pg_createcluster',
      [
        l.pg.version,
        l.pg.cluster,
        '--port',
        String(l.pg.port),
        '--datadir',
        dataDir(l),
        '--logfile',
        path.join(dir, 'postgresql.log'),
        '--start-conf',
        'manual',
        '--',
        '--auth-host=trust',
        '--auth-local=trust',
        '--encoding=UTF8',
      ],
      { timeoutMs: 120_000 },
    );
    c = await ours(l);
  }
  if (c?.status !== 'online') {
    say(`postgresql: starting ${l.pg.version}/${l.pg.cluster}`);
    await sh('pg_ctlcluster', [l.pg.version, l.pg.cluster, 'start'], { timeoutMs: 60_000 });
  }
  await until(`postgresql on ${l.pg.port} accepts connections`, 30_000, async () => ((await pgQuery(l.pg.port, 'SELECT 1')) ? true : undefined), 200);
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await sh('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await sh('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

export async function pgQuery(port: number, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function pgStatus(l: Layout): Promise<{ port: number; status: string }> {
  const c = await ours(l);
  return { port: l.pg.port, status: c?.status ?? 'absent' };
}

/** Stops and drops the world's server, and drops the world's databases on the machine's server. */
export async function downPg(l: Layout): Promise<void> {
  if (await ours(l)) await sh('pg_dropcluster', [l.pg.version, l.pg.cluster, '--stop'], { timeoutMs: 60_000 });
  const port = Number(new URL(l.pgBase).port || 5432);
  const names = (await pgQuery(port, `SELECT datname FROM pg_database WHERE datname = $1 OR datname ~ ('^' || $1 || '_[0-9]+$')`, [l.name]).catch(() => ({ rows: [] }))).rows;
  for (const { datname } of names as Array<{ datname: string }>) await pgQuery(port, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
}

/** Stops the world's server (fast shutdown) without dropping it: its shards become unreachable. */
export async function stopPg(l: Layout): Promise<void> {
  await sh('pg_ctlcluster', [l.pg.version, l.pg.cluster, 'stop', '-m', 'fast'], { timeoutMs: 60_000 });
}
