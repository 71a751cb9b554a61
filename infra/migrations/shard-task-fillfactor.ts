import type { Migration, MigrationRunner } from '../db';

/**
 * Half of every new `task` page stays free for the completion mark. The mark is not a HOT update
 * (`state` is in the pending and dead indexes' predicates), but when the new row version lands on the
 * old one's page PostgreSQL logs only the bytes that changed, not the whole row with its message.
 * On a full page (fillfactor 100) it moved to another page and logged all of it. Measured with
 * pgbench on a task-shaped table (insert 25, then mark them): WAL 1372 → 987 bytes per task, same
 * throughput (docs/BENCHMARKS.md, hot path step 23). Completed tasks are purged by retention, so the
 * free half costs no lasting space. Existing pages keep their layout; new pages follow the setting.
 */
export class ShardTaskFillfactor1767600000000 implements Migration {
  name = 'ShardTaskFillfactor1767600000000';

  async up(q: MigrationRunner): Promise<void> {
    await q.query('ALTER TABLE task SET (fillfactor = 50)');
  }

  async down(q: MigrationRunner): Promise<void> {
    await q.query('ALTER TABLE task RESET (fillfactor)');
  }
}
