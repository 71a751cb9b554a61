import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { alive, layout, readPid, type Layout } from './layout';
import { clusterDown, clusterUp, type ClusterWorld, type Part } from './world';

/**
 * A cluster world of one test file: its own folder, names and free ports, so that test runs in
 * parallel (or the shared world from `npm run cluster -- up`) never meet. `down()` removes it; a
 * world whose test process died is swept by the next one.
 */
export type PrivateWorld = ClusterWorld & { down(): Promise<void> };

const ROOT = '/tmp';
const PREFIX = 'aq-cluster-t-';

export async function privateWorld(parts: readonly Part[], say?: (s: string) => void): Promise<PrivateWorld> {
  await sweep();
  const id = randomBytes(3).toString('hex');
  const l = await freeLayout(id);
  fs.mkdirSync(l.dir, { recursive: true });
  fs.writeFileSync(path.join(l.dir, 'layout.json'), JSON.stringify(l));
  fs.writeFileSync(path.join(l.dir, 'owner.pid'), String(process.pid));
  let w: ClusterWorld;
  try {
    w = await clusterUp({ layout: l, parts, say });
  } catch (err) {
    await clusterDown({ layout: l }).catch(() => undefined);
    throw err;
  }
  return { ...w, down: () => clusterDown({ layout: l }) };
}

/** Removes the worlds of test processes that are gone. */
async function sweep(): Promise<void> {
  for (const d of fs.readdirSync(ROOT).filter((f) => f.startsWith(PREFIX))) {
    const dir = path.join(ROOT, d);
    if (alive(readPid(path.join(dir, 'owner.pid')))) continue;
    try {
      await clusterDown({ layout: JSON.parse(fs.readFileSync(path.join(dir, 'layout.json'), 'utf8')) as Layout });
    } catch {
      // Half-written world: nothing of it can be running without its layout.
    }
  }
}

async function freeLayout(id: string): Promise<Layout> {
  for (let attempt = 0; attempt < 20; attempt++) {
    // Every port (with Redis' buses at +10000 and Erlang's distribution at +20000) stays below
    // Linux's ephemeral range (32768 up): a port in it can be taken by any outgoing connection
    // between our free-check and the server's bind, as it once was in CI (a RabbitMQ node failed
    // to boot). amqp 10000-12692 (dist 30000-32692), redis 13000-19905 (buses 23000-29905), pg 20000-21999.
    const amqp = 10_000 + 10 * Math.floor(Math.random() * 270);
    const redis = 13_000 + 10 * Math.floor(Math.random() * 690);
    const pg = 20_000 + Math.floor(Math.random() * 2_000);
    const ports = [...[0, 1, 2, 3, 4, 5].flatMap((i) => [redis + i, redis + i + 10_000]), ...[0, 1, 2].flatMap((i) => [amqp + i, amqp + i + 20_000]), pg];
    if (!(await Promise.all(ports.map(free))).every(Boolean)) continue;
    return layout({
      AQ_CLUSTER_DIR: path.join(ROOT, `${PREFIX}${id}`),
      AQ_CLUSTER_NAME: `t${id}`,
      AQ_CLUSTER_REDIS_PORT: String(redis),
      AQ_CLUSTER_AMQP_PORT: String(amqp),
      AQ_CLUSTER_PG_PORT: String(pg),
    });
  }
  throw new Error('no free ports for a private cluster world');
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
