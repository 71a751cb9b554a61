import type { Migration, MigrationRunner } from '../db';

/** The catalog and the inbox, in creation order (references point to tables before them). */
const TABLES = [
  `
    CREATE TABLE raffle_activity (
      id               bigserial PRIMARY KEY,
      activity_id      bigint       NOT NULL UNIQUE,
      activity_name    varchar(64)  NOT NULL,
      activity_desc    varchar(128) NOT NULL DEFAULT '',
      begin_date_time  timestamptz  NOT NULL,
      end_date_time    timestamptz  NOT NULL,
      strategy_id      bigint       NOT NULL,
      state            varchar(8)   NOT NULL CHECK (state IN ('create', 'open', 'close')),
      create_time      timestamptz  NOT NULL DEFAULT now(),
      update_time      timestamptz  NOT NULL DEFAULT now(),
      CHECK (begin_date_time < end_date_time)
    )`,
  `
    CREATE TABLE raffle_activity_count (
      id                bigserial PRIMARY KEY,
      activity_count_id bigint  NOT NULL UNIQUE,
      total_count       integer NOT NULL CHECK (total_count >= 0),
      day_count         integer NOT NULL CHECK (day_count >= 0),
      month_count       integer NOT NULL CHECK (month_count >= 0),
      create_time       timestamptz NOT NULL DEFAULT now(),
      update_time       timestamptz NOT NULL DEFAULT now()
    )`,
  `
    CREATE TABLE raffle_activity_sku (
      id                  bigserial PRIMARY KEY,
      sku                 bigint  NOT NULL UNIQUE,
      activity_id         bigint  NOT NULL REFERENCES raffle_activity (activity_id),
      activity_count_id   bigint  NOT NULL REFERENCES raffle_activity_count (activity_count_id),
      stock_count         integer NOT NULL CHECK (stock_count >= -1),
      stock_count_surplus integer NOT NULL,
      product_amount      numeric(12, 2) NOT NULL DEFAULT 0,
      create_time         timestamptz NOT NULL DEFAULT now(),
      update_time         timestamptz NOT NULL DEFAULT now(),
      -- -1 is unlimited stock; otherwise the surplus is never negative nor above the stock
      CHECK ((stock_count = -1 AND stock_count_surplus = -1)
          OR (stock_count >= 0 AND stock_count_surplus BETWEEN 0 AND stock_count))
    )`,
  `CREATE INDEX raffle_activity_sku_activity_idx ON raffle_activity_sku (activity_id)`,
  `
    CREATE TABLE daily_behavior_rebate (
      id             bigserial PRIMARY KEY,
      behavior_type  varchar(16)  NOT NULL,
      rebate_desc    varchar(128) NOT NULL DEFAULT '',
      rebate_type    varchar(16)  NOT NULL CHECK (rebate_type IN ('sku')),
      rebate_config  varchar(32)  NOT NULL,
      state          varchar(8)   NOT NULL CHECK (state IN ('open', 'close')),
      create_time    timestamptz  NOT NULL DEFAULT now(),
      update_time    timestamptz  NOT NULL DEFAULT now(),
      UNIQUE (behavior_type, rebate_type, rebate_config)
    )`,
  // Inbox: event consumers remember the message ids they applied (at-least-once in, once in effect).
  `
    CREATE TABLE processed_message (
      consumer     varchar(64)  NOT NULL,
      message_id   varchar(128) NOT NULL,
      processed_at timestamptz  NOT NULL DEFAULT now(),
      PRIMARY KEY (consumer, message_id)
    )`,
];

/** Catalog tables of the global database (contract §3). Versioned: add a new class, never edit one. */
export class GlobalInit1763776800000 implements Migration {
  name = 'GlobalInit1763776800000';

  async up(q: MigrationRunner): Promise<void> {
    for (const ddl of TABLES) await q.query(ddl);
  }

  async down(q: MigrationRunner): Promise<void> {
    for (const t of ['processed_message', 'daily_behavior_rebate', 'raffle_activity_sku', 'raffle_activity_count', 'raffle_activity']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}

/** Issue 14: an activity's raffle-order TTL; behaviors as long as any caller id (128 characters). */
export class GlobalLifecycle1767000000000 implements Migration {
  name = 'GlobalLifecycle1767000000000';

  async up(q: MigrationRunner): Promise<void> {
    await q.query(`ALTER TABLE raffle_activity ADD COLUMN raffle_order_ttl_seconds integer CHECK (raffle_order_ttl_seconds > 0)`);
    await q.query(`ALTER TABLE daily_behavior_rebate ALTER COLUMN behavior_type TYPE varchar(128)`);
  }

  async down(q: MigrationRunner): Promise<void> {
    await q.query(`ALTER TABLE daily_behavior_rebate ALTER COLUMN behavior_type TYPE varchar(16)`);
    await q.query(`ALTER TABLE raffle_activity DROP COLUMN raffle_order_ttl_seconds`);
  }
}

/** Issue 17: the shard layout the data was written with (one row, recorded by the first migrate). */
export class GlobalLayout1767200000000 implements Migration {
  name = 'GlobalLayout1767200000000';

  async up(q: MigrationRunner): Promise<void> {
    await q.query(`
      CREATE TABLE shard_layout (
        id             smallint    PRIMARY KEY CHECK (id = 1),
        database_count integer     NOT NULL CHECK (database_count > 0),
        table_count    integer     NOT NULL CHECK (table_count > 0),
        recorded_at    timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: MigrationRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS shard_layout`);
  }
}

/** Retention: the inbox is purged by age. */
export class GlobalInboxAge1767300000000 implements Migration {
  name = 'GlobalInboxAge1767300000000';

  async up(q: MigrationRunner): Promise<void> {
    await q.query(`CREATE INDEX processed_message_age ON processed_message (processed_at)`);
  }

  async down(q: MigrationRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS processed_message_age`);
  }
}

export const globalMigrations = [GlobalInit1763776800000, GlobalLifecycle1767000000000, GlobalLayout1767200000000, GlobalInboxAge1767300000000];
