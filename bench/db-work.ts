import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type pg from 'pg';
import { round, sleep } from './support';

/**
 * What PostgreSQL does per message on the shard databases, beside its CPU (bench/cpu.ts), from the
 * WAL of the bench's own shard databases (pg_waldump over the span's LSN range: the records that
 * touch their blocks and the commits of the transactions that wrote them, so other databases on
 * the server do not count): bytes, commits, rows written and rows locked; and statements, each one
 * round trip (the workers' `aq_db_statements_total`, the pgbench script's commands).
 *
 * Not from pg_stat_database: a backend reports its counters at most once a second, and an idle one
 * that reported less than a second ago only after 10 s (PGSTAT_IDLE_INTERVAL), so the pipeline's
 * pooled connections reported a span's work seconds late. The WAL is exact at once.
 */
export const SETTLE_MS = 500;

export type WorkMark = Readonly<{ lsn: string }>;

/** Per message of one span. */
export type DbWork = Readonly<{
  messages: number;
  /** Commit records: transactions that wrote something (read-only ones write none). */
  transactions?: number;
  statements?: number;
  /** Heap inserts, updates (HOT or not) and deletes. */
  rowsWritten?: number;
  /** Of the updates, HOT ones (no index entry written). */
  hotUpdates?: number;
  /** Row locks (`FOR UPDATE`, ON CONFLICT DO UPDATE's lock of the existing row). */
  rowsLocked?: number;
  walBytes?: number;
  /** WAL bytes without full-page images (which depend on where the last checkpoint fell). */
  walBytesNoFpi?: number;
  /**
   * WAL bytes without full-page images by table (a table's indexes, TOAST, id sequence and split
   * tables `_000` … counted with it; the commit and abort records under COMMITS), per message.
   */
  walByTable?: Readonly<Record<string, number>>;
  /** The whole server's WAL over the span (other databases included), per message. */
  serverWalBytes: number;
  walNote?: string;
}>;

const lsnToNumber = (lsn: string): number => {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
};

export type DbWorkMeter = Readonly<{
  mark(): Promise<WorkMark>;
  /** From `a` to now (after SETTLE_MS), per message of the span. */
  since(a: WorkMark, o: { messages: number; statementsPerMessage?: number; statementsAfterSettle?: () => Promise<unknown> }): Promise<DbWork>;
}>;

/** `dataDirectory` and the server's major version locate pg_wal and pg_waldump; without them WAL is the server's. */
export async function dbWorkMeter(shards: readonly pg.Pool[], dataDirectory?: string): Promise<DbWorkMeter> {
  const oids = new Set<string>();
  for (const p of shards) oids.add(String((await p.query(`SELECT oid FROM pg_database WHERE datname = current_database()`)).rows[0].oid));
  const major = Math.floor(Number((await shards[0]!.query('SHOW server_version_num')).rows[0].server_version_num) / 10_000);
  const waldump = process.env.PG_WALDUMP ?? `/usr/lib/postgresql/${major}/bin/pg_waldump`;
  const walDir = dataDirectory ? `${dataDirectory}/pg_wal` : undefined;
  const readable =
    !!walDir &&
    fs.existsSync(waldump) &&
    (() => {
      try {
        fs.readdirSync(walDir);
        return true;
      } catch {
        return false;
      }
    })();
  const tableOf = async () => {
    const names = new Map<string, string>();
    for (const p of shards) for (const r of (await p.query<{ key: string; name: string }>(RELATION_NAMES)).rows) names.set(r.key, r.name);
    return names;
  };
  const lsns = async () => (await shards[0]!.query('SELECT pg_current_wal_insert_lsn()::text AS lsn, pg_current_wal_flush_lsn()::text AS flushed')).rows[0] as { lsn: string; flushed: string };
  return {
    mark: async () => ({ lsn: (await lsns()).lsn }),
    async since(a, o) {
      await sleep(SETTLE_MS);
      await o.statementsAfterSettle?.();
      const l = await lsns();
      const wal = readable ? await walOf(waldump, walDir!, a.lsn, l.flushed, oids) : { note: "pg_wal or pg_waldump not readable: the server's WAL only" };
      const per = (v: number) => (o.messages > 0 ? round(v / o.messages) : NaN);
      return {
        messages: o.messages,
        ...(o.statementsPerMessage !== undefined ? { statements: o.statementsPerMessage } : {}),
        ...('bytes' in wal
          ? {
              transactions: per(wal.commits),
              rowsWritten: per(wal.rowsWritten),
              hotUpdates: per(wal.hotUpdates),
              rowsLocked: per(wal.rowsLocked),
              walBytes: per(wal.bytes),
              walBytesNoFpi: per(wal.bytes - wal.fpi),
              walByTable: byTable(wal.byRelation, await tableOf(), per),
            }
          : {}),
        serverWalBytes: per(lsnToNumber(l.lsn) - lsnToNumber(a.lsn)),
        ...('note' in wal && wal.note ? { walNote: wal.note } : {}),
      };
    },
  };
}

/** Each relation file of this database (`<database oid>/<relfilenode>`) with the table it belongs to: an index or a TOAST table with its table. */
const RELATION_NAMES = `
  SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::text || '/' || pg_relation_filenode(c.oid)::text AS key,
         coalesce(t.relname, o.relname, c.relname) AS name
    FROM pg_class c
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    LEFT JOIN pg_class t ON t.oid = i.indrelid
    LEFT JOIN pg_class o ON o.reltoastrelid = c.oid
   WHERE pg_relation_filenode(c.oid) IS NOT NULL`;

/** Bytes by relation → per message by table (names from `names`; a table's `_id_seq` and its split tables `_000` … count with it; a relation not found, e.g. dropped since, is "other"). */
export function byTable(byRelation: Readonly<Record<string, number>>, names: ReadonlyMap<string, string>, per: (v: number) => number): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const [rel, bytes] of Object.entries(byRelation)) {
    const name = rel === COMMITS ? COMMITS : (names.get(rel) ?? 'other').replace(/_id_seq$/, '').replace(/_\d{3}$/, '');
    sums[name] = (sums[name] ?? 0) + bytes;
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, per(v)]));
}

const RECORD = /^rmgr: (\S+)\s+len \(rec\/tot\):\s*(\d+)\/\s*(\d+), tx:\s*(\d+), lsn: [0-9A-F]+\/[0-9A-F]+, prev [0-9A-F]+\/[0-9A-F]+, desc: (\S+)/;
const BLOCK_DB = / rel \d+\/(\d+)\/(\d+)/g;
/** The key of commit and abort records in `byRelation`. */
export const COMMITS = 'commit records';

/**
 * Reads pg_waldump's lines in order and keeps the bytes of the databases `oids`: records that touch a
 * block of theirs, and the commit / abort records of the transactions that wrote them. `fpi`: the
 * full-page image bytes among them (`tot` − `rec`). `byRelation`: the bytes without full-page
 * images by the relation of a record's first block (`<database oid>/<relfilenode>`), commits and
 * aborts under COMMITS.
 */
export function walAttribution(oids: ReadonlySet<string>) {
  const ours = new Set<string>();
  let bytes = 0;
  let fpi = 0;
  let records = 0;
  let commits = 0;
  let rowsWritten = 0;
  let hotUpdates = 0;
  let rowsLocked = 0;
  const byRelation: Record<string, number> = {};
  return {
    add(line: string): void {
      const m = RECORD.exec(line);
      if (!m) return;
      records++;
      const [, rmgr, rec, tot, tx, desc] = m;
      let mine = false;
      let relation: string | undefined;
      for (const b of line.matchAll(BLOCK_DB)) {
        relation ??= `${b[1]}/${b[2]}`;
        if (oids.has(b[1]!)) mine = true;
      }
      if (mine && tx !== '0') ours.add(tx!);
      if (!mine && rmgr === 'Transaction' && ours.has(tx!) && /^(COMMIT|ABORT)/.test(desc!)) {
        mine = true;
        relation = COMMITS;
        if (desc === 'COMMIT') commits++;
      }
      if (!mine) return;
      bytes += Number(tot);
      fpi += Number(tot) - Number(rec);
      byRelation[relation!] = (byRelation[relation!] ?? 0) + Number(rec);
      if (rmgr === 'Heap' && /^(INSERT|UPDATE|HOT_UPDATE|DELETE)(\+INIT)?$/.test(desc!)) rowsWritten++;
      if (rmgr === 'Heap' && desc!.startsWith('HOT_UPDATE')) hotUpdates++;
      if (rmgr === 'Heap2' && desc!.startsWith('MULTI_INSERT')) rowsWritten += Number(/MULTI_INSERT(?:\+INIT)? (\d+) tuples/.exec(line)?.[1] ?? 1);
      if (rmgr === 'Heap' && desc === 'LOCK') rowsLocked++;
    },
    result: () => ({ bytes, fpi, records, commits, rowsWritten, hotUpdates, rowsLocked, byRelation }),
  };
}

/** The WAL bytes of `oids` between two LSNs (pg_waldump over pg_wal). */
type Wal = ReturnType<ReturnType<typeof walAttribution>['result']>;

async function walOf(waldump: string, walDir: string, from: string, to: string, oids: ReadonlySet<string>): Promise<(Wal & { note?: string }) | { note: string }> {
  if (lsnToNumber(to) <= lsnToNumber(from)) return { bytes: 0, fpi: 0, records: 0, commits: 0, rowsWritten: 0, hotUpdates: 0, rowsLocked: 0, byRelation: {} };
  const child = spawn(waldump, ['-p', walDir, '-s', from, '-e', to], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (x) => (err = (err + x).slice(-2_000)));
  const acc = walAttribution(oids);
  for await (const line of readline.createInterface({ input: child.stdout })) acc.add(line);
  const code: number | null = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('close', resolve)));
  const r = acc.result();
  if (!r.records) return { note: `pg_waldump read nothing (${code}: ${err.trim().split('\n').pop()}): the server's WAL only` };
  return { ...r, ...(code ? { note: `pg_waldump stopped early (${err.trim().split('\n').pop()})` } : {}) };
}

/** Sums `aq_db_statements_total` of the shard databases over the workers' /metrics. */
export async function scrapeStatements(ports: readonly number[]): Promise<number | undefined> {
  let total = 0;
  for (const port of ports) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`)
      .then((r) => r.text())
      .catch(() => undefined);
    if (text === undefined) return undefined;
    for (const m of text.matchAll(/^aq_db_statements_total\{db="shard:\d+"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm)) total += Number(m[1]);
  }
  return total;
}
