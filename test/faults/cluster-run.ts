import fs from 'node:fs';
import path from 'node:path';
import { privateWorld } from '../cluster/private';
import { clusterUp, layout, worldEnv, type ClusterWorld } from '../cluster/world';
import { clusterScenarios } from './cluster-scenarios';
import type { Scenario } from './scenarios';
import { liveProcs } from './world';

/**
 * The cluster world of `npm run test:faults -- --cluster`: a private one (own folder, node names and
 * free ports; `down()` stops every RabbitMQ node, Redis node and the second PostgreSQL server it
 * started and removes its data), also on SIGINT/SIGTERM; a run killed with -9 leaves it to the
 * next run's sweep (test/cluster/private.ts). `reuse`: the world of `npm run cluster -- up`, left up.
 */
export type ClusterRun = { world?: ClusterWorld; scenarios: Scenario[]; down(): Promise<void> };

const say = (s: string) => process.stdout.write(`# cluster: ${s}\n`);

export async function openClusterWorld(o: { reuse: boolean; list: boolean }): Promise<ClusterRun> {
  if (o.list) {
    const l = layout();
    return { scenarios: clusterScenarios({ layout: l, env: worldEnv(l), startMs: 0 }), down: async () => undefined };
  }
  const t0 = Date.now();
  if (o.reuse) {
    const world = await clusterUp({ say });
    say(`reusing ${world.layout.dir} (up in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return { world, scenarios: clusterScenarios(world), down: async () => undefined };
  }
  const world = await privateWorld(['rabbitmq', 'redis', 'postgresql'], say);
  say(
    `up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${world.layout.dir}, RabbitMQ ${world.layout.rabbit.map((r) => r.port).join('/')}, Redis ${world.layout.redisPorts[0]}…, PostgreSQL ${world.layout.pg.port}`,
  );
  let downing: Promise<void> | undefined;
  const down = () =>
    (downing ??= (async () => {
      const t1 = Date.now();
      if (process.env.FAULTS_KEEP_LOGS) {
        const keep = `/tmp/aq-cluster-logs-${path.basename(world.layout.dir)}`;
        try {
          for (const part of ['rabbitmq/log', 'redis']) fs.cpSync(path.join(world.layout.dir, part), path.join(keep, part), { recursive: true, force: true });
          say(`RabbitMQ and Redis logs kept in ${keep}`);
        } catch (err) {
          say(`could not keep the logs: ${(err as Error).message}`);
        }
      }
      await world.down();
      say(`down in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    })());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      say(`${sig}: stopping the service trees and the cluster world`);
      for (const p of liveProcs) {
        try {
          process.kill(-p.child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      void down().finally(() => process.exit(130));
    });
  }
  return { world, scenarios: clusterScenarios(world), down };
}

const DOC = path.resolve(import.meta.dirname, '../../docs/RELIABILITY.md');
const BEGIN = '<!-- cluster-faults:begin (written by npm run test:faults -- --cluster) -->';
const END = '<!-- cluster-faults:end -->';
const HEAD = ['| scenario | load | fault | recovery | inputs | lost | doubled | result | what the failover cost | run |', '|---|---|---|---|---|---|---|---|---|---|'];

/** Replaces the rows of the scenarios just run in docs/RELIABILITY.md's generated table (others stay). */
export function writeClusterRows(rows: ReadonlyArray<{ name: string; line: string }>): void {
  if (!rows.length || !fs.existsSync(DOC)) return;
  const text = fs.readFileSync(DOC, 'utf8');
  const b = text.indexOf(BEGIN);
  const e = text.indexOf(END);
  if (b < 0 || e < b) return;
  const old = text
    .slice(b + BEGIN.length, e)
    .split('\n')
    .filter((l) => l.startsWith('| cluster-'));
  const byName = new Map(old.map((l) => [l.split('|')[1]!.trim(), l]));
  for (const r of rows) byName.set(r.name, r.line);
  const order = ['cluster-rabbit-leader-kill', 'cluster-redis-master-kill', 'cluster-pg-server-stop', 'cluster-kill-instances', 'cluster-rolling-restart'];
  const lines = [...byName.entries()].sort(([a], [b2]) => (order.indexOf(a) >>> 0) - (order.indexOf(b2) >>> 0)).map(([, l]) => l);
  fs.writeFileSync(DOC, `${text.slice(0, b + BEGIN.length)}\n${[...HEAD, ...lines].join('\n')}\n${text.slice(e)}`);
}
