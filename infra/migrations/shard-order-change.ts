import type { Migration, MigrationRunner } from '../db';
import { splitSuffix } from '../../domain/router';

/**
 * A use or cancel delivered again after it applied: every raffle order remembers the message id of
 * the request that moved it out of `create` (`changed_by`; null for expiry and for requests without
 * one), so that request is answered as its first delivery was instead of `ERR_BIZ_009`. A nullable
 * column without a default: adding it rewrites nothing.
 */
export function shardOrderChange(tableCount: number): new () => Migration {
  return class ShardOrderChange1767500000000 implements Migration {
    name = 'ShardOrderChange1767500000000';

    async up(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) await q.query(`ALTER TABLE user_raffle_order_${splitSuffix(t)} ADD COLUMN changed_by varchar(128)`);
    }

    async down(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) await q.query(`ALTER TABLE user_raffle_order_${splitSuffix(t)} DROP COLUMN IF EXISTS changed_by`);
    }
  };
}
