import type { Migration, MigrationRunner } from '../db';
import { splitSuffix } from '../../domain/router';

/**
 * Partake delivered again: every raffle order remembers the message id of the partake request that
 * created it (`request_id`, unique per user and activity), so a caller's retry with the same message id is
 * answered with that order, whatever became of it since, instead of a new one.
 */
export function shardPartakeRequest(tableCount: number): new () => Migration {
  return class ShardPartakeRequest1767200000000 implements Migration {
    name = 'ShardPartakeRequest1767200000000';

    async up(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await q.query(`ALTER TABLE user_raffle_order_${s} ADD COLUMN request_id varchar(128)`);
        await q.query(`CREATE UNIQUE INDEX user_raffle_order_${s}_request ON user_raffle_order_${s} (user_id, activity_id, request_id) WHERE request_id IS NOT NULL`);
      }
    }

    async down(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) await q.query(`ALTER TABLE user_raffle_order_${splitSuffix(t)} DROP COLUMN IF EXISTS request_id`);
    }
  };
}
