import type { Databases } from '../../infra/shards';
import type { Logger } from '../../infra/log';
import { purgeProcessed } from '../../infra/inbox';
import { purgeCompleted } from '../../infra/outbox';

/** Rows deleted per statement, and statements per table and round at most (a round's work stays bounded). */
export const RETENTION_BATCH = 1_000;
const MAX_BATCHES = 50;

export type Purged = { tasks: number; inbox: number };

/**
 * One retention round: completed outbox tasks on every shard and the global inbox rows older than
 * `olderThanSeconds`, in batches. Idempotency never rests on these rows (docs/DESIGN.md, "What
 * grows"), so deleting them changes no outcome. A shard that is down is skipped until next round;
 * two instances purging at once only delete each row once.
 */
export async function purgeRound(dbs: Pick<Databases, 'global' | 'shards'>, olderThanSeconds: number, log: Logger): Promise<Purged> {
  const purged: Purged = { tasks: 0, inbox: 0 };
  const drain = async (what: string, step: () => Promise<number>): Promise<number> => {
    let total = 0;
    try {
      for (let i = 0; i < MAX_BATCHES; i++) {
        const n = await step();
        total += n;
        if (n < RETENTION_BATCH) break;
      }
    } catch (err) {
      log.warn({ err, what }, 'retention round skipped a database, next round tries again');
    }
    return total;
  };
  for (const s of dbs.shards) purged.tasks += await drain(`shard ${s.shard} task`, () => purgeCompleted(s.ds, olderThanSeconds, RETENTION_BATCH));
  purged.inbox = await drain('global processed_message', () => purgeProcessed(dbs.global, olderThanSeconds, RETENTION_BATCH));
  if (purged.tasks || purged.inbox) log.info({ ...purged, olderThanSeconds }, 'retention: old completed tasks and inbox rows deleted');
  return purged;
}
