/**
 * Recharge throughput on this machine (not part of `npm test`):
 *   npx tsx test/int/recharge-throughput.ts [N=5000] [LOG_LEVEL=warn]
 * Publishes N recharges by N distinct users into an isolated world, then starts one
 * `npm run worker -- recharge` process and times the orders landing in the shards.
 */
import { spawnNpm, waitConsumers } from '../support/workers';
import { QUEUES, declareTopology } from '../../infra/topology';
import amqplib from 'amqplib';
import { sql } from '../../infra/db';
import { COUNTS, aSku, anActivity, load, openWorld } from './recharge-world';

const n = Number(process.argv[2] ?? 5000);
const logLevel = process.argv[3] ?? 'warn';
const w = await openWorld([]);
try {
  const conn = await amqplib.connect(w.env.config.amqpUrl);
  const ch = await conn.createChannel();
  await declareTopology(ch, w.env.config);
  await load(w, { activities: [anActivity(100301)], counts: [COUNTS], skus: [aSku(9011, 100301, 1_000_000)] });
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => w.client.publish(QUEUES.recharge, { userId: `bench-${i + j}`, sku: 9011, outBusinessNo: `o-${i + j}` })));
  }
  const svc = spawnNpm(['run', 'worker', '--', 'recharge'], { ...w.env.env, LOG_LEVEL: logLevel });
  await waitConsumers((q) => ch.checkQueue(q), [QUEUES.recharge]);
  const t0 = Date.now();
  const marks: Array<[number, number]> = [];
  for (;;) {
    let done = 0;
    for (const { ds } of w.dbs.shards) {
      const union = w.dbs.suffixes.map((x) => `SELECT count(*) AS c FROM raffle_activity_order_${x}`).join(' UNION ALL ');
      done += Number((await sql<{ c: string }>(ds, `SELECT sum(c) AS c FROM (${union}) t`)).rows[0]!.c);
    }
    marks.push([Date.now() - t0, done]);
    if (done >= n || Date.now() - t0 > 300_000) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const total = marks.at(-1)!;
  const from = marks.find(([, d]) => d >= n * 0.2)!;
  const to = marks.find(([, d]) => d >= n * 0.9)!;
  const steady = ((to[1] - from[1]) / ((to[0] - from[0]) / 1000)).toFixed(0);
  process.stdout.write(
    `${total[1]} orders in ${(total[0] / 1000).toFixed(1)} s (${(total[1] / (total[0] / 1000)).toFixed(0)}/s overall); steady state (20%..90%): ${steady}/s; LOG_LEVEL=${logLevel}\n`,
  );
  process.kill(-svc.child.pid!, 'SIGTERM'); // its own process group: npm, sh and the worker
  await svc.exited;
  await conn.close();
} finally {
  await w.close();
}
process.exit(0);
