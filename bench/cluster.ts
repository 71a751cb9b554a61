import fs from 'node:fs';
import path from 'node:path';
import { QUEUES } from '../infra/topology';
import { rabbitPid } from '../test/cluster/rabbit-nodes';
import { redisPid } from '../test/cluster/redis-nodes';
import type { ClusterWorld } from '../test/cluster/world';
import { clusterEnvFactory, clusterListQueues } from '../test/faults/cluster-env';
import { openClusterWorld } from '../test/faults/cluster-run';
import { sampleCommits } from '../test/faults/cluster-load';
import { catalog, recharges, send, SKU } from '../test/faults/load';
import { sleep, World, type Proc } from '../test/faults/world';
import { CLK_TCK, machineSource, postgresSource, scanProcs, treeOf, type Source } from './cpu';
import { clusterFigure, writeClusterDocs, type ClusterRow } from './cluster-report';

/**
 * `npm run bench -- --cluster [--reuse] [--n N] [--duration S] [--docs|--no-docs]`: partake and
 * recharge throughput in the cluster world (3 RabbitMQ nodes, Redis Cluster 3+3, 4 shards on 2
 * PostgreSQL servers) with 1 and then 2 `npm start` trees, and the CPU each component used, so that
 * what saturates first can be read off. Writes docs/benchmarks-cluster.{json,svg} and the table in
 * docs/BENCHMARKS.md (between the bench-cluster markers) unless --no-docs.
 */
const args = process.argv.slice(2);
const get = (f: string) => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
const N = Number(get('--n') ?? 4000);
const DURATION_S = Number(get('--duration') ?? 20);
const CALLERS = 48;
const say = (s: string) => process.stdout.write(`# bench cluster: ${s}\n`);

type Cpu = Record<string, number>;

/** CPU sources of the world and the trees: per component, summed over its processes. */
function sources(cw: ClusterWorld, trees: readonly Proc[]): Record<string, Source[]> {
  const l = cw.layout;
  const pidSource = (pid: number | undefined): Source[] => (pid ? [treeOf(pid)] : []);
  return {
    workers: trees.flatMap((t) => pidSource(t.child.pid)),
    rabbitmq: l.rabbit.flatMap((n) => pidSource(rabbitPid(l, n))),
    redis: l.redisPorts.flatMap((p) => pidSource(redisPid(l, p))),
    'postgresql :5432': [postgresSource('/var/lib/postgresql/15/main')],
    [`postgresql :${l.pg.port}`]: [postgresSource(path.join(l.dir, 'postgresql', 'data'))],
    machine: [machineSource],
  };
}

function readCpu(src: Record<string, Source[]>): Cpu {
  const t = scanProcs();
  const out: Cpu = { driver: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 };
  for (const [k, list] of Object.entries(src)) out[k] = list.reduce((a, s) => a + (s(t)?.seconds ?? 0), 0);
  return out;
}

const share = (a: Cpu, b: Cpu, seconds: number): Cpu => Object.fromEntries(Object.keys(b).map((k) => [k, Math.round((100 * ((b[k] ?? 0) - (a[k] ?? 0))) / seconds)]));

async function withTrees<T>(cw: ClusterWorld, instances: number, body: (w: World, trees: Proc[]) => Promise<T>): Promise<T> {
  const w = await World.create({ env: clusterEnvFactory(cw), listQueues: clusterListQueues(cw.layout), extra: { LOG_LEVEL: 'warn' } });
  try {
    const trees: Proc[] = [w.spawn()];
    await w.loadCatalog(catalog(10_000_000));
    await w.waitConsumers(trees[0], 120_000, 1);
    for (let i = 1; i < instances; i++) {
      trees.push(w.spawn());
      await w.waitConsumers(trees[i], 120_000, i + 1);
    }
    return await body(w, trees);
  } finally {
    await w.close();
  }
}

/** N recharges (a quarter of a limited SKU: a take + WAIT each) published flat out; until all are committed. */
async function rechargeRun(w: World, src: Record<string, Source[]>): Promise<{ perSec: number; perShard: number[]; cpu: Cpu }> {
  const inputs = [...recharges(Math.round(N * 0.75), { users: 2000 }), ...recharges(Math.round(N * 0.25), { users: 1000, sku: SKU.limited, prefix: 'lim' })].sort(() => Math.random() - 0.5);
  const sampler = sampleCommits(w.config, SKU.limited);
  await sleep(500);
  const base = sampler.samples[sampler.samples.length - 1]!.n;
  const c0 = readCpu(src);
  const t0 = Date.now();
  await send(w, inputs, { concurrency: 64 });
  const total = (n: readonly number[]) => n.reduce((a, v) => a + v, 0);
  while (total(sampler.samples[sampler.samples.length - 1]!.n) - total(base) < inputs.length) await sleep(200);
  const seconds = (Date.now() - t0) / 1000;
  const c1 = readCpu(src);
  const last = sampler.samples[sampler.samples.length - 1]!.n;
  sampler.stop();
  return { perSec: inputs.length / seconds, perShard: last.map((v, i) => (v - base[i]!) / seconds), cpu: share(c0, c1, seconds) };
}

/** CALLERS closed-loop callers, each a user with 10 chances: partake, use, repeat, for DURATION_S. */
async function partakeRun(w: World, src: Record<string, Source[]>): Promise<{ perSec: number; cpu: Cpu }> {
  const users = recharges(CALLERS * 8, { users: CALLERS * 8, sku: SKU.quota10, prefix: 'bp' });
  await send(w, users, { concurrency: 64 });
  await w.waitIdle(120_000);
  let ok = 0;
  const c0 = readCpu(src);
  const t0 = Date.now();
  const end = t0 + DURATION_S * 1000;
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, i) => {
      for (let u = i; Date.now() < end; u += CALLERS) {
        const userId = users[u % users.length]!.userId;
        for (let k = 0; k < 10 && Date.now() < end; k++) {
          const r = await w.caller.rpc(QUEUES.partake, { userId, activityId: 100301 }, 10_000).catch(() => undefined);
          const orderId = r?.code === '0000' ? r.data?.orderId : undefined;
          if (!orderId) break;
          ok++;
          await w.caller.rpc(QUEUES.raffleOrderUsed, { userId, orderId: String(orderId) }, 10_000).catch(() => undefined);
        }
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  return { perSec: ok / seconds, cpu: share(c0, readCpu(src), seconds) };
}

const cluster = await openClusterWorld({ reuse: args.includes('--reuse'), list: false });
const rows: ClusterRow[] = [];
try {
  for (const instances of [1, 2]) {
    await withTrees(cluster.world!, instances, async (w, trees) => {
      const src = sources(cluster.world!, trees);
      say(`${instances} instance(s) per worker: ${N} recharges`);
      const r = await rechargeRun(w, src);
      say(`recharge ${r.perSec.toFixed(0)}/s (per shard ${r.perShard.map((v) => v.toFixed(0)).join('/')}), CPU % ${JSON.stringify(r.cpu)}`);
      say(`${instances} instance(s) per worker: partake + use, ${CALLERS} callers, ${DURATION_S} s`);
      const p = await partakeRun(w, src);
      say(`partake ${p.perSec.toFixed(0)}/s, CPU % ${JSON.stringify(p.cpu)}`);
      rows.push({ instances, rechargePerSec: r.perSec, rechargePerShard: r.perShard, rechargeCpu: r.cpu, partakePerSec: p.perSec, partakeCpu: p.cpu });
    });
  }
} finally {
  await cluster.down();
}
const docs = !args.includes('--no-docs');
process.stdout.write(`${clusterFigure(rows).table}\n`);
if (docs) writeClusterDocs(rows, { n: N, durationS: DURATION_S, callers: CALLERS, clkTck: CLK_TCK });
fs.mkdirSync(path.resolve(import.meta.dirname, 'out'), { recursive: true });
fs.writeFileSync(path.resolve(import.meta.dirname, 'out', 'bench-cluster-latest.json'), JSON.stringify(rows, null, 2));
process.exit(0);
