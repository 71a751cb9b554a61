import type { Migration, MigrationRunner } from '../db';
import { splitSuffix } from '../../domain/router';
import { shardLifecycle } from './shard-lifecycle';
import { shardLookupIndexes } from './shard-lookup-indexes';
import { shardOrderChange } from './shard-order-change';
import { shardPartakeRequest } from './shard-partake-request';
import { ShardTaskFillfactor1767600000000 } from './shard-task-fillfactor';
import { ShardTaskIndexes1767400000000 } from './shard-task-indexes';

/** Tables of a shard database that are not split by user: accounts with their day and month rows, and the outbox. */
const SHARED_TABLES = [
  `
    CREATE TABLE raffle_activity_account (
      id                  bigserial PRIMARY KEY,
      user_id             varchar(128) NOT NULL,
      activity_id         bigint  NOT NULL,
      total_count         integer NOT NULL CHECK (total_count >= 0),
      total_count_surplus integer NOT NULL CHECK (total_count_surplus >= 0),
      day_count           integer NOT NULL CHECK (day_count >= 0),
      day_count_surplus   integer NOT NULL CHECK (day_count_surplus >= 0),
      month_count         integer NOT NULL CHECK (month_count >= 0),
      month_count_surplus integer NOT NULL CHECK (month_count_surplus >= 0),
      create_time         timestamptz NOT NULL DEFAULT now(),
      update_time         timestamptz NOT NULL DEFAULT now(),
      UNIQUE (user_id, activity_id)
    )`,
  `
    CREATE TABLE raffle_activity_account_day (
      id                bigserial PRIMARY KEY,
      user_id           varchar(128) NOT NULL,
      activity_id       bigint  NOT NULL,
      day               varchar(10) NOT NULL,
      day_count         integer NOT NULL CHECK (day_count >= 0),
      day_count_surplus integer NOT NULL CHECK (day_count_surplus >= 0),
      create_time       timestamptz NOT NULL DEFAULT now(),
      update_time       timestamptz NOT NULL DEFAULT now(),
      UNIQUE (user_id, activity_id, day)
    )`,
  `
    CREATE TABLE raffle_activity_account_month (
      id                  bigserial PRIMARY KEY,
      user_id             varchar(128) NOT NULL,
      activity_id         bigint  NOT NULL,
      month               varchar(7) NOT NULL,
      month_count         integer NOT NULL CHECK (month_count >= 0),
      month_count_surplus integer NOT NULL CHECK (month_count_surplus >= 0),
      create_time         timestamptz NOT NULL DEFAULT now(),
      update_time         timestamptz NOT NULL DEFAULT now(),
      UNIQUE (user_id, activity_id, month)
    )`,
  `
    CREATE TABLE task (
      id              bigserial PRIMARY KEY,
      user_id         varchar(128) NOT NULL,
      topic           varchar(64)  NOT NULL,
      message_id      varchar(128) NOT NULL UNIQUE,
      message         jsonb        NOT NULL,
      state           varchar(16)  NOT NULL DEFAULT 'create' CHECK (state IN ('create', 'completed', 'fail', 'dead')),
      attempts        integer      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      next_attempt_at timestamptz  NOT NULL DEFAULT now(),
      last_error      text,
      create_time     timestamptz  NOT NULL DEFAULT now(),
      update_time     timestamptz  NOT NULL DEFAULT now()
    )`,
  // The relay scans only what is still to be sent.
  `CREATE INDEX task_pending_idx ON task (next_attempt_at) WHERE state IN ('create', 'fail')`,
  `CREATE INDEX task_state_idx ON task (state, id)`,
];

/** The recharge ledger of split table `s`. */
const rechargeOrderTable = (s: string): string[] => [
  `
    CREATE TABLE raffle_activity_order_${s} (
      id              bigserial PRIMARY KEY,
      user_id         varchar(128) NOT NULL,
      sku             bigint       NOT NULL,
      activity_id     bigint       NOT NULL,
      activity_name   varchar(64)  NOT NULL,
      strategy_id     bigint       NOT NULL,
      order_id        varchar(32)  NOT NULL UNIQUE,
      order_time      timestamptz  NOT NULL,
      total_count     integer      NOT NULL CHECK (total_count >= 0),
      day_count       integer      NOT NULL CHECK (day_count >= 0),
      month_count     integer      NOT NULL CHECK (month_count >= 0),
      pay_type        varchar(16)  NOT NULL DEFAULT 'free' CHECK (pay_type IN ('cash', 'credit', 'coupon', 'free')),
      pay_amount      numeric(12, 2) NOT NULL DEFAULT 0 CHECK (pay_amount >= 0),
      state           varchar(16)  NOT NULL DEFAULT 'completed',
      out_business_no varchar(128) NOT NULL,
      create_time     timestamptz  NOT NULL DEFAULT now(),
      update_time     timestamptz  NOT NULL DEFAULT now(),
      UNIQUE (user_id, out_business_no)
    )`,
  // Stock is rebuilt by counting a SKU's orders.
  `CREATE INDEX raffle_activity_order_${s}_sku_idx ON raffle_activity_order_${s} (sku)`,
];

/** Raffle orders (entry tickets) and behavior rebate orders of split table `s`. */
const raffleAndRebateTables = (s: string): string[] => [
  `
    CREATE TABLE user_raffle_order_${s} (
      id            bigserial PRIMARY KEY,
      user_id       varchar(128) NOT NULL,
      activity_id   bigint       NOT NULL,
      activity_name varchar(64)  NOT NULL,
      strategy_id   bigint       NOT NULL,
      order_id      varchar(32)  NOT NULL UNIQUE,
      order_time    timestamptz  NOT NULL,
      order_state   varchar(16)  NOT NULL DEFAULT 'create' CHECK (order_state IN ('create', 'used', 'cancel')),
      create_time   timestamptz  NOT NULL DEFAULT now(),
      update_time   timestamptz  NOT NULL DEFAULT now()
    )`,
  `CREATE INDEX user_raffle_order_${s}_user_idx ON user_raffle_order_${s} (user_id, activity_id)`,
  // At most one unused entry ticket per user and activity, whatever the workers do.
  `CREATE UNIQUE INDEX user_raffle_order_${s}_one_open ON user_raffle_order_${s} (user_id, activity_id) WHERE order_state = 'create'`,
  `
    CREATE TABLE user_behavior_rebate_order_${s} (
      id              bigserial PRIMARY KEY,
      user_id         varchar(128) NOT NULL,
      order_id        varchar(32)  NOT NULL UNIQUE,
      behavior_type   varchar(16)  NOT NULL,
      rebate_desc     varchar(128) NOT NULL DEFAULT '',
      rebate_type     varchar(16)  NOT NULL,
      rebate_config   varchar(32)  NOT NULL,
      out_business_no varchar(128) NOT NULL,
      biz_id          varchar(256) NOT NULL UNIQUE,
      create_time     timestamptz  NOT NULL DEFAULT now(),
      update_time     timestamptz  NOT NULL DEFAULT now()
    )`,
  `CREATE INDEX user_behavior_rebate_order_${s}_user_idx ON user_behavior_rebate_order_${s} (user_id, out_business_no)`,
];

/**
 * Tables of one shard database (contract §3): accounts, the outbox, and `tableCount` copies of each
 * split table. Versioned: add a new class, never edit one.
 */
export function shardMigrations(tableCount: number): Array<new () => Migration> {
  class ShardInit1763776800000 implements Migration {
    name = 'ShardInit1763776800000';

    async up(q: MigrationRunner): Promise<void> {
      for (const ddl of SHARED_TABLES) await q.query(ddl);
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        for (const ddl of [...rechargeOrderTable(s), ...raffleAndRebateTables(s)]) await q.query(ddl);
      }
    }

    async down(q: MigrationRunner): Promise<void> {
      for (let t = 0; t < tableCount; t++) {
        const s = splitSuffix(t);
        for (const p of ['user_behavior_rebate_order', 'user_raffle_order', 'raffle_activity_order']) await q.query(`DROP TABLE IF EXISTS ${p}_${s}`);
      }
      for (const t of ['task', 'raffle_activity_account_month', 'raffle_activity_account_day', 'raffle_activity_account']) await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
  return [
    ShardInit1763776800000,
    shardLifecycle(tableCount),
    shardPartakeRequest(tableCount),
    ShardTaskIndexes1767400000000,
    shardOrderChange(tableCount),
    ShardTaskFillfactor1767600000000,
    shardLookupIndexes(tableCount),
  ];
}
