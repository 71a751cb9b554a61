import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../infra/config';
import { log } from '../../infra/log';
import { mastersOf, connectRedis } from '../../infra/redis';
import { migrate } from '../../infra/migrate';
import { alive } from '../cluster/layout';
import { rabbitPid } from '../cluster/rabbit-nodes';
import { rabbitCli, type Layout } from '../cluster/world';
import type { ClusterWorld } from '../cluster/world';
import type { TestEnv } from '../support/env';
import type { ListQueues } from './world';

/**
 * A fault scenario's world inside the cluster world: its own vhost on the three RabbitMQ nodes, its
 * own key prefix on the Redis Cluster, its own global database (machine's server) and four shard
 * databases on the two PostgreSQL servers. Removed by `cleanup()`; the cluster world stays up.
 */
export function clusterEnvFactory(cw: ClusterWorld): (extra: Record<string, string>) => Promise<TestEnv> {
  return async (extra) => {
    const l = cw.layout;
    const id = `aqt_${randomBytes(4).toString('hex')}`;
    await rabbitAny(l, ['add_vhost', id]);
    await rabbitAny(l, ['set_permissions', '-p', id, 'guest', '.*', '.*', '.*']);
    const servers = cw.env.AQ_CLUSTER_PG_BASES!.split(',');
    const env: Record<string, string> = {
      DATABASE_URL: `${l.pgBase}/${id}`,
      SHARD_DATABASE_URLS: [1, 2, 3, 4].map((i) => `${servers[(i - 1) % servers.length]}/${id}_${String(i).padStart(2, '0')}`).join(','),
      SHARD_TABLE_COUNT: '4',
      AMQP_URL: cw.env
        .AMQP_URL!.split(',')
        .map((u) => `${u}/${id}`)
        .join(','),
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cw.env.REDIS_CLUSTER_NODES!,
      REDIS_KEY_PREFIX: `${id}:`,
      ACTIVITY_TIME_ZONE: 'UTC',
      ...extra,
      // Two trees on one machine would fight over the ports: no /metrics in the cluster scenarios.
      METRICS_PORT: '0',
    };
    const config = loadConfig(env);
    await migrate(config);
    return {
      id,
      config,
      env,
      async cleanup() {
        await rabbitAny(l, ['delete_vhost', id]).catch(() => undefined);
        const redis = await connectRedis(config, log.child({}, { level: 'silent' }), 'fault-cleanup').catch(() => undefined);
        for (const m of redis ? mastersOf(redis) : []) {
          const keys = await m.keys(`${id}:*`).catch(() => [] as string[]);
          for (const k of keys) await m.del(k).catch(() => undefined);
        }
        redis?.disconnect();
        for (const url of [config.databaseUrl, ...config.shardUrls]) {
          const admin = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
          admin.on('error', () => undefined);
          const name = decodeURIComponent(new URL(url).pathname.slice(1));
          await admin
            .connect()
            .then(() => admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`))
            .catch(() => undefined);
          await admin.end().catch(() => undefined);
        }
      },
    };
  };
}

/** A CLI call on the first node of the world that runs (one may be killed by the scenario). */
export async function rabbitAny(l: Layout, args: string[]): Promise<string> {
  let last: unknown;
  for (const n of l.rabbit) {
    if (!alive(rabbitPid(l, n))) continue;
    try {
      return await rabbitCli(l, n, args, 'rabbitmqctl', 30_000);
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no RabbitMQ node of the world answers${last ? `: ${(last as Error).message.split('\n')[0]}` : ''}`);
}

export const clusterListQueues =
  (l: Layout): ListQueues =>
  (vhost, columns) =>
    rabbitAny(l, ['-q', 'list_queues', '-p', vhost, ...columns]);
