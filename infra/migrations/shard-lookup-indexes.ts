import type { Migration, MigrationRunner } from '../db';
import { splitSuffix } from '../../domain/router';

/**
 * A user's lookups read the index made for them, whatever PostgreSQL knows of the table. On a new
 * table its cost estimates of every index that can serve a lookup come out equal (one row each), and
 * the generic plan a worker's connection keeps (infra/db.ts) took whichever came out a hair cheaper:
 * - the open-order lookup of a partake (`user_id, activity_id, order_state = 'create'`) read the expiry
 *   index `(activity_id, order_time) WHERE order_state = 'create'` with a filter on the user, i.e.
 *   every open order of the activity in that split table, instead of `_one_open`. The expiry index's
 *   predicate now also names `order_time IS NOT NULL` (always true: the column is NOT NULL), which only
 *   a query that bounds `order_time`, the expiry scan, implies;
 * - a recharge's duplicate check (`user_id, out_business_no`) read the history index `(user_id,
 *   activity_id, order_time)` on `user_id` alone, i.e. every order of the user, instead of the unique
 *   `(user_id, out_business_no)`. The history index now leads with `activity_id`; the history read,
 *   which fixes both, ranges over it as before.
 * Checked by test/int/plans.int.test.ts. The indexes are rebuilt, which blocks writes to each table
 * while it runs: on a deployment with large tables, migrate before the workers start.
 */
export function shardLookupIndexes(tableCount: number): new () => Migration {
  return class ShardLookupIndexes1767800000000 implements Migration {
    name = 'ShardLookupIndexes1767800000000';

    async up(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await q.query(`DROP INDEX user_raffle_order_${s}_expiry`);
        await q.query(`CREATE INDEX user_raffle_order_${s}_expiry ON user_raffle_order_${s} (activity_id, order_time) WHERE order_state = 'create' AND order_time IS NOT NULL`);
        for (const table of ['raffle_activity_order', 'user_raffle_order']) {
          await q.query(`DROP INDEX ${table}_${s}_history`);
          await q.query(`CREATE INDEX ${table}_${s}_history ON ${table}_${s} (activity_id, user_id, order_time)`);
        }
      }
    }

    async down(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await q.query(`DROP INDEX user_raffle_order_${s}_expiry`);
        await q.query(`CREATE INDEX user_raffle_order_${s}_expiry ON user_raffle_order_${s} (activity_id, order_time) WHERE order_state = 'create'`);
        for (const table of ['raffle_activity_order', 'user_raffle_order']) {
          await q.query(`DROP INDEX ${table}_${s}_history`);
          await q.query(`CREATE INDEX ${table}_${s}_history ON ${table}_${s} (user_id, activity_id, order_time)`);
        }
      }
    }
  };
}
