import { parseArgs } from 'node:util';
import { clusterDown, clusterStatus, clusterUp, layout } from './world';

const USAGE = `usage: npm run cluster -- up|down|status [--json]
  up      start (installing what is missing) 3 RabbitMQ nodes, a Redis Cluster (3 masters + 3 replicas)
          and a second PostgreSQL server; prints the environment that uses them
  down    stop all of them and remove their data
  status  what runs, and the environment
  Folder and ports: AQ_CLUSTER_DIR (/tmp/aq-cluster), AQ_CLUSTER_NAME (aqc), AQ_CLUSTER_AMQP_PORT (5701),
  AQ_CLUSTER_REDIS_PORT (7101), AQ_CLUSTER_PG_PORT (5433). Use: eval "$(npm run -s cluster -- up)"`;

const say = (line: string) => process.stderr.write(`cluster: ${line}\n`);
const exports = (env: Record<string, string>) =>
  Object.entries(env)
    .map(([k, v]) => `export ${k}='${v}'`)
    .join('\n');

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean' } } });
  const verb = positionals[0];
  if (values.help || positionals.length !== 1 || !['up', 'down', 'status'].includes(verb!)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (verb === 'up') {
    const w = await clusterUp({ say });
    say(`up in ${(w.startMs / 1000).toFixed(1)} s (${w.layout.dir})`);
    process.stdout.write(values.json ? `${JSON.stringify({ startMs: w.startMs, env: w.env })}\n` : `${exports(w.env)}\n`);
    return 0;
  }
  if (verb === 'down') {
    await clusterDown({ say });
    say(`down: stopped and removed ${layout().dir}`);
    return 0;
  }
  const s = await clusterStatus();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
  } else {
    for (const r of s.rabbit) say(`rabbitmq ${r.node} :${r.port} ${r.running ? `running, cluster of ${r.clustered.length}` : 'stopped'}`);
    for (const r of s.redis) say(`redis :${r.port} ${r.running ? `${r.role ?? '?'}${r.slots ? ` slots ${r.slots}` : ''}` : 'stopped'}`);
    say(`postgresql :${s.pg.port} ${s.pg.status}`);
    say(s.ready ? 'ready' : 'not ready');
    process.stdout.write(`${exports(s.env)}\n`);
  }
  return s.ready ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`cluster: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
