import type { Migration, MigrationRunner } from '../db';
import { javaHash, splitSuffix } from '../../domain/router';

/**
 * Issue 14 on every shard: rejections kept as long as orders (`raffle_activity_order_rejection_NNN`,
 * filled from the outbox's `recharge.rejected` tasks so that purging the outbox keeps idempotency),
 * the expiry and history indexes, and rebate columns wide enough for any caller id.
 */
export function shardLifecycle(tableCount: number): new () => Migration {
  return class ShardLifecycle1767000000000 implements Migration {
    name = 'ShardLifecycle1767000000000';

    async up(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await q.query(`
          CREATE TABLE raffle_activity_order_rejection_${s} (
            id              bigserial PRIMARY KEY,
            user_id         varchar(128) NOT NULL,
            sku             bigint       NOT NULL,
            out_business_no varchar(128) NOT NULL,
            code            varchar(16)  NOT NULL,
            info            text         NOT NULL DEFAULT '',
            message_id      varchar(128) NOT NULL,
            create_time     timestamptz  NOT NULL DEFAULT now(),
            UNIQUE (user_id, out_business_no)
          )`);
        // The expiry job scans unused orders of one activity by age.
        await q.query(`CREATE INDEX user_raffle_order_${s}_expiry ON user_raffle_order_${s} (activity_id, order_time) WHERE order_state = 'create'`);
        // History pages, newest first; the (user_id, activity_id) index is a prefix of it.
        await q.query(`CREATE INDEX user_raffle_order_${s}_history ON user_raffle_order_${s} (user_id, activity_id, order_time)`);
        await q.query(`DROP INDEX IF EXISTS user_raffle_order_${s}_user_idx`);
        await q.query(`CREATE INDEX raffle_activity_order_${s}_history ON raffle_activity_order_${s} (user_id, activity_id, order_time)`);
        // biz_id = userId _ behavior _ sku _ outBusinessNo: 128 + 128 + 20 + 128 + 3 characters at most.
        await q.query(`ALTER TABLE user_behavior_rebate_order_${s} ALTER COLUMN behavior_type TYPE varchar(128), ALTER COLUMN biz_id TYPE varchar(512)`);
      }
      await copyRejections(q, tableCount);
    }

    async down(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await q.query(`ALTER TABLE user_behavior_rebate_order_${s} ALTER COLUMN behavior_type TYPE varchar(16), ALTER COLUMN biz_id TYPE varchar(256)`);
        await q.query(`DROP INDEX IF EXISTS raffle_activity_order_${s}_history`);
        await q.query(`CREATE INDEX IF NOT EXISTS user_raffle_order_${s}_user_idx ON user_raffle_order_${s} (user_id, activity_id)`);
        await q.query(`DROP INDEX IF EXISTS user_raffle_order_${s}_history`);
        await q.query(`DROP INDEX IF EXISTS user_raffle_order_${s}_expiry`);
        await q.query(`DROP TABLE IF EXISTS raffle_activity_order_rejection_${s}`);
      }
    }
  };
}

/**
 * Every recorded rejection (its outbox task) into the user's split table. The suffix is the router's
 * `idx mod T`; shards × tables is a power of two, so T is one too and `idx mod T = h' & (T - 1)`.
 */
async function copyRejections(q: MigrationRunner, tableCount: number): Promise<void> {
  type Row = { id: string; message_id: string; create_time: Date; data: Record<string, unknown> };
  for (let after = '0'; ; ) {
    const rows: Row[] = await q.query(
      `SELECT id::text AS id, message_id, create_time, message->'data' AS data FROM task
        WHERE topic = 'recharge.rejected' AND id > $1 ORDER BY id LIMIT 1000`,
      [after],
    );
    if (!rows.length) return;
    for (const r of rows) {
      const userId = String(r.data.userId);
      const h = javaHash(userId);
      const s = splitSuffix((h ^ (h >>> 16)) & (tableCount - 1));
      await q.query(
        `INSERT INTO raffle_activity_order_rejection_${s} (user_id, sku, out_business_no, code, info, message_id, create_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, out_business_no) DO NOTHING`,
        [userId, Number(r.data.sku), String(r.data.outBusinessNo), String(r.data.code), String(r.data.info ?? ''), r.message_id, r.create_time],
      );
    }
    after = rows[rows.length - 1]!.id;
  }
}
