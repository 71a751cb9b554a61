import { createHash } from 'node:crypto';
import { SpanKind, SpanStatusCode, context, trace, type Context, type Span } from '@opentelemetry/api';
import pg from 'pg';
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { circuit, type Circuit } from './circuit';
import { TransientError, sqlStateKind } from './errors';
import { log } from './log';
import { circuitOpen, dbStatements } from './metrics';
import { tracer } from './trace-context';

/** Migrations are typeorm's (versioned classes, one transaction each but where a class sets `transaction = false`); nothing else of typeorm leaves this file. */
export type Migration = MigrationInterface;
export type MigrationRunner = QueryRunner;

/**
 * A database: a pg pool with client-side bounds on every wait, and a circuit that fails calls at
 * once while the database is out (docs/DESIGN.md "Partial failures"). `scope` names it in errors.
 */
export type Db = Readonly<{ name: string; scope: string; circuit: Circuit; pool: pg.Pool }>;
/** The transaction handle every repository function takes first. */
export type Tx = Readonly<{ db: Db; client: pg.PoolClient }>;
export type Row = Record<string, unknown>;
export type Result<T> = { rows: T[]; count: number };

export type OpenOptions = Readonly<{
  url: string;
  /** Shown in pg_stat_activity and in logs. */
  name: string;
  /** The dependency this database is for the consumer policy: `global`, `shard:N`. */
  scope: string;
  poolSize?: number;
  /** Server-side statement_timeout; the client gives up 2 s later (a silent network path). 0: no limit. */
  statementTimeoutMs?: number;
  /** Client-side bound on opening a connection (TCP, startup, auth) and on waiting for a pooled one. */
  connectTimeoutMs?: number;
}>;

/**
 * Every pooled connection: one generic plan per statement (see `prepared`), and no sequential scan
 * where an index serves, since that plan is made on the tables' size at first use and kept: a plan
 * made on small tables read them whole as they grew (docs/DESIGN.md "Hot path"; hot path row 26).
 */
export const SESSION_OPTIONS = '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off';

/** Connections that failed below SQL (lost, timed out): released with an error, so the pool drops them. */
const broken = new WeakSet<pg.PoolClient>();

export function openDatabase(o: OpenOptions): Db {
  const statementMs = o.statementTimeoutMs ?? 5_000;
  const pool = new pg.Pool({
    connectionString: o.url,
    application_name: `activity-quota:${o.name}`,
    max: o.poolSize ?? 10,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(statementMs ? { statement_timeout: statementMs, query_timeout: statementMs + 2_000 } : {}),
    // Bounded so that a reservation reaper can trust that no transaction outlives a minute.
    idle_in_transaction_session_timeout: 30_000,
    options: SESSION_OPTIONS,
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (err) => log.warn({ err, db: o.name }, 'database pool client error'));
  circuitOpen.set({ shard: o.scope }, 0);
  let wasOpen = false;
  const c = circuit(o.scope, { minOpenMs: 250, maxOpenMs: 5_000 }, (state) => {
    const open = state !== 'closed';
    if (open !== wasOpen) log.warn({ db: o.name }, open ? 'database failing: circuit open, its messages wait' : 'database back: circuit closed');
    wasOpen = open;
    circuitOpen.set({ shard: o.scope }, open ? 1 : 0);
  });
  return { name: o.name, scope: o.scope, pool, circuit: c };
}

export async function closeDatabase(db: Db): Promise<void> {
  await db.pool.end().catch(() => undefined);
}

/**
 * A failure of `db` as the consumer policy sees it: SQLSTATE decides (08P01, a protocol violation,
 * is a bug, not an outage); anything below SQL (connection lost, read timeout) is an outage, which
 * opens the circuit. A protocol-level failure leaves the connection unusable: it is dropped.
 */
function failure(db: Db, err: unknown, client?: pg.PoolClient): unknown {
  if (err instanceof TransientError) return err;
  if (err instanceof pg.DatabaseError) {
    const kind = err.code && err.code !== '08P01' ? sqlStateKind(err.code) : undefined;
    if (kind === 'outage') db.circuit.failed();
    return kind ? new TransientError(db.scope, kind, `${db.scope}: ${err.message}`, { cause: err }) : err;
  }
  if (client) broken.add(client);
  db.circuit.failed();
  return new TransientError(db.scope, 'outage', `${db.scope}: ${String((err as Error)?.message ?? err)}`, { cause: err });
}

/** Runs `fn` if the circuit lets it; an answer of the database (even an error) closes the circuit. */
async function guarded<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  if (!db.circuit.allow()) throw new TransientError(db.scope, 'outage', `${db.scope}: circuit open, the database failed recently`);
  try {
    const out = await fn();
    db.circuit.succeeded();
    return out;
  } catch (err) {
    // An outage of this database has opened the circuit already (failure()); another dependency's is not ours.
    if (!(err instanceof TransientError && err.kind === 'outage' && err.scope === db.scope)) db.circuit.succeeded();
    throw err;
  }
}

const listening = new WeakSet<pg.PoolClient>();

async function acquire(db: Db): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await db.pool.connect();
  } catch (err) {
    throw failure(db, err);
  }
  // A checked-out client that loses its server emits `error` (the pool listens only to idle ones);
  // its query fails as well, and the client is dropped when released.
  if (!listening.has(client)) {
    listening.add(client);
    client.on('error', (err) => {
      broken.add(client);
      log.debug({ err, db: db.name }, 'database connection lost');
    });
  }
  return client;
}

const release = (client: pg.PoolClient): void => client.release(broken.has(client) ? new Error('connection failed below SQL') : undefined);

const names = new Map<string, string>();

/**
 * A row count written into a statement's text (`LIMIT 1000`) instead of a parameter: a generic plan
 * (see `prepared`) sizes `LIMIT $n` at a tenth of the table and may then join the limited rows by a
 * sequential scan of it, which retention's deletes did (bench/scenarios/generic-plans.ts).
 */
export function countLiteral(n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`a row count must be a positive integer, got ${n}`);
  return String(n);
}

/**
 * Every statement goes out as a named (prepared) statement: PostgreSQL parses it once per connection,
 * and with `plan_cache_mode = force_generic_plan` (set on every pooled connection) plans it once too.
 * By default it plans each of the first five executions for their parameter values, then keeps
 * planning every execution whenever its generic plan looks costlier than those: the set-based
 * statements, whose `unnest` arrays it cannot size in a generic plan, were planned on about every
 * second execution, at 1–2 ms a plan, half as much PostgreSQL time as their execution (measured
 * with pg_stat_statements; docs/BENCHMARKS.md, hot path step 24). Every statement here looks rows
 * up by key, so one plan fits all parameter values. The name is derived from the text, so one name
 * never means two texts.
 */
function prepared(text: string): string {
  let name = names.get(text);
  if (!name) names.set(text, (name = `aq_${createHash('sha1').update(text).digest('base64url').slice(0, 24)}`));
  return name;
}

async function run<T>(db: Db, client: pg.PoolClient, text: string, params: unknown[]): Promise<Result<T>> {
  dbStatements.inc({ db: db.scope });
  try {
    const r = await client.query({ name: prepared(text), text, values: params });
    return { rows: r.rows as T[], count: r.rowCount ?? r.rows.length };
  } catch (err) {
    throw failure(db, err, client);
  }
}

/** Parameterised SQL inside `tx`, or alone on a pooled connection of `db`: rows, and the affected row count. */
export async function sql<T = Row>(on: Tx | Db, text: string, params: unknown[] = []): Promise<Result<T>> {
  if ('client' in on) return run<T>(on.db, on.client, text, params);
  return guarded(on, async () => {
    const client = await acquire(on);
    try {
      return await run<T>(on, client, text, params);
    } finally {
      release(client);
    }
  });
}

/** A transaction left open by the caller (a job that spans several databases); `transaction` is the usual way. */
export type OpenTransaction = Tx & Readonly<{ commit(): Promise<void>; rollback(): Promise<void> }>;

export async function begin(db: Db): Promise<OpenTransaction> {
  return guarded(db, async () => {
    const client = await acquire(db);
    try {
      await run(db, client, 'BEGIN', []);
    } catch (err) {
      release(client);
      throw err;
    }
    let done = false;
    const end = async (statement: 'COMMIT' | 'ROLLBACK') => {
      if (done) return;
      done = true;
      try {
        await run(db, client, statement, []);
      } finally {
        release(client);
      }
    };
    return { db, client, commit: () => end('COMMIT'), rollback: () => end('ROLLBACK').catch(() => undefined) };
  });
}

/** Runs `fn` in one transaction, in a span of its own; commits on return, rolls back and rethrows on error. */
export async function transaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const span = transactionSpan(db);
  try {
    const out = await context.with(trace.setSpan(context.active(), span), () => untracedTransaction(db, fn));
    endSpan(span);
    return out;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}

/** A span over one transaction of `db`, child of the span in `parent`; `units`: messages sharing it (group commit). */
export function transactionSpan(db: Db, parent: Context = context.active(), units = 1): Span {
  return tracer().startSpan(
    `transaction ${db.scope}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { 'db.system.name': 'postgresql', 'db.operation.name': 'transaction', 'aq.db.scope': db.scope, 'aq.group.units': units },
    },
    parent,
  );
}

export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String((err as Error)?.message ?? err) });
  }
  span.end();
}

/** `transaction` without its span: for a caller that traces the transaction itself (group commit). */
export async function untracedTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const t = await begin(db);
  let out: T;
  try {
    out = await fn(t);
  } catch (err) {
    await t.rollback();
    throw err;
  }
  await t.commit();
  return out;
}

/** `SELECT 1` past the circuit, for health checks. */
export async function probe(db: Db): Promise<void> {
  const client = await acquire(db);
  try {
    await run(db, client, 'SELECT 1', []);
  } finally {
    release(client);
  }
}

/** Applies pending migrations with typeorm (table `schema_migrations`); the names of those applied. */
export const runMigrations = (url: string, name: string, migrations: Array<new () => Migration>): Promise<string[]> =>
  withMigrations(url, name, migrations, async (ds) => (await ds.runMigrations({ transaction: 'each' })).map((m) => m.name));

/** Reverts the last `count` applied migrations, newest first, each in its own transaction (their `down()`). */
export async function revertMigrations(url: string, name: string, migrations: Array<new () => Migration>, count: number): Promise<void> {
  await withMigrations(url, name, migrations, async (ds) => {
    for (let n = 0; n < count; n++) await ds.undoLastMigration({ transaction: 'each' });
  });
}

/** typeorm is loaded only when migrations run: the workers never do, and it costs ~28 MB of RSS (hot path row 28). */
async function withMigrations<T>(url: string, name: string, migrations: Array<new () => Migration>, f: (ds: DataSource) => Promise<T>): Promise<T> {
  const { DataSource } = await import('typeorm');
  const ds = new DataSource({
    type: 'postgres',
    url,
    applicationName: `activity-quota:${name}`,
    poolSize: 2,
    migrations,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
    poolErrorHandler: (err: unknown) => log.warn({ err, db: name }, 'database pool client error'),
  });
  await ds.initialize();
  try {
    return await f(ds);
  } finally {
    await ds.destroy();
  }
}
