import pg from 'pg';
import type { Config } from '../../../infra/config';
import { splitSuffix } from '../../../domain/router';
import { stockKey } from '../../../infra/stock';
import type { Snapshot } from './types';
import { log } from '../../../infra/log';
import { connectRedis } from '../../../infra/redis';

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'fault-books' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Everything the books look at: every shard (all split tables), the global SKU rows, the live Redis counters. */
export async function readSnapshot(config: Config): Promise<Snapshot> {
  const snap: Snapshot = { orders: [], rejections: [], raffle: [], accounts: [], days: [], months: [], tasks: [], skus: [], redisStock: new Map() };
  const suffixes = Array.from({ length: config.shardTableCount }, (_, t) => splitSuffix(t));
  for (const [i, url] of config.shardUrls.entries()) {
    const shard = i + 1;
    await withClient(url, async (c) => {
      for (const s of suffixes) {
        const rows = async (q: string) => (await c.query(q)).rows.map((r) => ({ ...r, shard, suffix: s }));
        snap.orders.push(...(await rows(`SELECT user_id, sku::text, activity_id::text, order_id, order_time, total_count, day_count, month_count, out_business_no FROM raffle_activity_order_${s}`)));
        snap.rejections.push(...(await rows(`SELECT user_id, sku::text, out_business_no, code, message_id, create_time FROM raffle_activity_order_rejection_${s}`)));
        snap.raffle.push(...(await rows(`SELECT user_id, activity_id::text, order_id, order_time, order_state FROM user_raffle_order_${s}`)));
      }
      const rows = async (q: string) => (await c.query(q)).rows.map((r) => ({ ...r, shard }));
      snap.accounts.push(
        ...(await rows(`SELECT user_id, activity_id::text, total_count, total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus FROM raffle_activity_account`)),
      );
      snap.days.push(...(await rows(`SELECT user_id, activity_id::text, day, day_count, day_count_surplus FROM raffle_activity_account_day`)));
      snap.months.push(...(await rows(`SELECT user_id, activity_id::text, month, month_count, month_count_surplus FROM raffle_activity_account_month`)));
      snap.tasks.push(...(await rows(`SELECT id::text, user_id, topic, message_id, state, message FROM task`)));
    });
  }
  snap.skus = await withClient(config.databaseUrl, async (c) => (await c.query(`SELECT sku::int AS sku, stock_count, stock_count_surplus FROM raffle_activity_sku`)).rows);
  // One Redis or a Redis Cluster, under the world's key prefix, as the workers see it.
  const redis = await connectRedis(config, log.child({}, { level: 'silent' }), 'fault-books');
  try {
    for (const s of snap.skus) {
      const v = await redis.get(stockKey(s.sku));
      if (v !== null) snap.redisStock.set(s.sku, Number(v));
    }
  } finally {
    redis.disconnect();
  }
  return snap;
}
