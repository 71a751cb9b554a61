import type { Migration, MigrationRunner } from '../db';

/**
 * The outbox's indexes cost every task twice: once at its insert and again at its completion mark
 * (a non-HOT update, which enters the new row version into every index). `task_state_idx (state, id)`
 * served only retention, the `dead` count and replay of dead tasks: retention now walks the primary
 * key (completed tasks are the oldest), and dead tasks get a partial index that holds only them.
 * Measured with pgbench on a task-shaped table (insert, then mark completed): WAL 1427 → 1238 bytes
 * per task (docs/BENCHMARKS.md, hot path step 15).
 */
export class ShardTaskIndexes1767400000000 implements Migration {
  name = 'ShardTaskIndexes1767400000000';

  async up(q: MigrationRunner): Promise<void> {
    await q.query(`CREATE INDEX task_dead_idx ON task (id) WHERE state = 'dead'`);
    await q.query(`DROP INDEX IF EXISTS task_state_idx`);
  }

  async down(q: MigrationRunner): Promise<void> {
    await q.query(`CREATE INDEX IF NOT EXISTS task_state_idx ON task (state, id)`);
    await q.query(`DROP INDEX IF EXISTS task_dead_idx`);
  }
}
