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
 * Checked by test/int/plans.int.test.ts.
 *
 * Online: `up` runs outside a transaction and builds each new index with `CREATE INDEX
 * CONCURRENTLY` under a temporary name, then drops the old one `CONCURRENTLY` and renames the new one,
 * so the workers keep writing while it runs (test/int/migrations.int.test.ts). Each step can be run
 * again: a run that stopped half-way (an invalid `_new` index, or the old one already dropped) is
 * finished by the next `migrate`. `down` rebuilds the old indexes in one transaction (blocking).
 */
export function shardLookupIndexes(tableCount: number): new () => Migration {
  return class ShardLookupIndexes1767800000000 implements Migration {
    name = 'ShardLookupIndexes1767800000000';

    /** Outside a transaction: `CONCURRENTLY` cannot run inside one. */
    transaction = false;

    async up(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        await rebuildOnline(q, `user_raffle_order_${s}_expiry`, `user_raffle_order_${s} (activity_id, order_time) WHERE order_state = 'create' AND order_time IS NOT NULL`);
        for (const table of ['raffle_activity_order', 'user_raffle_order']) await rebuildOnline(q, `${table}_${s}_history`, `${table}_${s} (activity_id, user_id, order_time)`);
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

/** Replaces index `name` with `CREATE INDEX name ON <definition>` without blocking writes; safe to repeat. */
async function rebuildOnline(q: MigrationRunner, name: string, definition: string): Promise<void> {
  await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}_new`); // left invalid by a build that failed
  await q.query(`CREATE INDEX CONCURRENTLY ${name}_new ON ${definition}`);
  await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  await q.query(`ALTER INDEX ${name}_new RENAME TO ${name}`);
}
