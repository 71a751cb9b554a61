import { createHash } from 'node:crypto';
import { DataSource, type EntityManager, type MigrationInterface, type QueryRunner } from 'typeorm';
import { log } from './log';

/** The transaction handle every repository function takes first. */
export type Tx = EntityManager;
export type Row = Record<string, unknown>;

export type OpenOptions = Readonly<{
  url: string;
  /** Shown in pg_stat_activity and in logs. */
  name: string;
  poolSize?: number;
  migrations?: Array<new () => MigrationInterface>;
}>;

/** A DataSource (one pg pool) with an `error` listener, bounded statements and bounded transactions. */
export async function openDatabase(o: OpenOptions): Promise<DataSource> {
  const ds = new DataSource({
    type: 'postgres',
    url: o.url,
    applicationName: `activity-quota:${o.name}`,
    poolSize: o.poolSize ?? 10,
    migrations: o.migrations ?? [],
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
    // An idle client that loses its server emits here; without a listener the process would crash.
    poolErrorHandler: (err: unknown) => log.warn({ err, db: o.name }, 'database pool client error'),
    extra: {
      connectionTimeoutMillis: 5_000,
      // Bounded so that a reservation reaper can trust that no transaction outlives a minute.
      statement_timeout: 30_000,
      idle_in_transaction_session_timeout: 30_000,
    },
  });
  await ds.initialize();
  return ds;
}

export type Result<T> = { rows: T[]; count: number };

/** Parameterised SQL inside `tx` (or a pooled client): rows, and the affected row count. */
export async function sql<T = Row>(tx: Tx | DataSource, text: string, params: unknown[] = []): Promise<Result<T>> {
  if (tx instanceof DataSource) {
    const qr = tx.createQueryRunner();
    try {
      return await structured<T>(qr, text, params);
    } finally {
      await qr.release();
    }
  }
  if (!tx.queryRunner) throw new Error('sql(tx): the manager is not bound to a transaction');
  return structured<T>(tx.queryRunner, text, params);
}

const names = new Map<string, string>();

/**
 * Every statement goes out as a named (prepared) statement: PostgreSQL parses and plans it once per
 * connection instead of on every call. typeorm hands the query to pg as it is, and pg takes a
 * `{ name, text }` config; the name is derived from the text, so one name never means two texts.
 */
function prepared(text: string): string {
  let name = names.get(text);
  if (!name) names.set(text, (name = `aq_${createHash('sha1').update(text).digest('base64url').slice(0, 24)}`));
  return { name, text } as unknown as string;
}

async function structured<T>(qr: QueryRunner, text: string, params: unknown[]): Promise<Result<T>> {
  const r = await qr.query(prepared(text), params, true);
  const rows = (r.records ?? []) as T[];
  return { rows, count: typeof r.affected === 'number' ? r.affected : rows.length };
}

/** Runs `fn` in one transaction; commits on return, rolls back and rethrows on error. */
export function transaction<T>(ds: DataSource, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return ds.transaction(fn);
}
