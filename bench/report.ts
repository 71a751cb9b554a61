import fs from 'node:fs';
import path from 'node:path';
import { cheapestBesideBroker, MACHINE, SOURCES, STOLEN, type CheapestPair, type CpuRow, type CpuSpan } from './cpu';
import { COMMITS, type DbWork } from './db-work';
import type { DbPoint } from './scenarios/ceiling-db';
import type { PubSub, RpcPoint } from './scenarios/ceiling-broker';
import type { PacedPoint, PartakePoint } from './scenarios/partake';
import type { OutboxResult, RechargeResult } from './scenarios/recharge';
import { BUCKETS, msPerMessage, type PostgresProfile } from './profile';
import { round, type Latency } from './support';

export type Availability<T> = { available: true; result: T } | { available: false; reason: string } | undefined;

/** Database work per message of one span (bench/db-work.ts), with PostgreSQL's CPU per message of the same span. */
export type DbWorkRow = DbWork & Readonly<{ side: 'pipeline' | 'db ceiling'; scenario: 'partake' | 'recharge'; concurrency?: number; postgresMs?: number }>;

export type Results = {
  meta: { date: string; command: string; options: Record<string, unknown>; machine: Record<string, unknown>; loadAfter?: number[]; seconds?: number; commit?: string };
  partake?: Availability<PartakePoint[]>;
  /** Open loop at half the best closed-loop partake throughput: the goal's p99. */
  partakeHalfPeak?: PacedPoint;
  recharge?: Availability<RechargeResult>;
  outbox?: Availability<OutboxResult & { underLoad: Record<string, Latency> }>;
  ceilings?: {
    dbPartake: DbPoint[];
    dbRecharge: DbPoint[];
    brokerRpc: RpcPoint[];
    brokerPubSub?: PubSub;
    variants?: Array<{ name: string; kind: 'partake' | 'recharge'; about: string; points: DbPoint[]; paired?: DbPoint[] }>;
    /** The DB ceiling again, each level beside the broker ceiling's rpc loop at the same C. */
    dbPartakeBesideBroker?: DbPoint[];
    dbRechargeBesideBroker?: DbPoint[];
  };
  rss?: { peaks: Record<string, number>; phases: Record<string, Record<string, number>>; cpu?: Record<string, Record<string, number>> };
  /** CPU seconds of the services, workers, ceiling clients and the machine per span (bench/cpu.ts), and per message. */
  cpu?: { clockTicks: number; spans: CpuSpan[]; perMessage: CpuRow[]; cheapest?: { partake?: CheapestPair; recharge?: CheapestPair } };
  /** What PostgreSQL did per message on the shard databases, per span of both sides. */
  dbWork?: DbWorkRow[];
  /** `--profile`: PostgreSQL's perf samples per span, by where they fall (bench/profile.ts). */
  postgresProfiles?: PostgresProfile[];
};

const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : String(round(v)));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b || !Number.isFinite(a) ? '–' : `${(a / b).toFixed(2)}×`);
const lat = (l: Latency | undefined) => (l?.n ? `${f(l.p50)} / ${f(l.p95)} / ${f(l.p99)}` : '–');
const best = (ps: ReadonlyArray<{ throughput: number }> | undefined) => (ps?.length ? Math.max(...ps.map((p) => p.throughput)) : undefined);

/** The figures as a markdown table (also printed on the console). */
export function markdown(r: Results): string {
  const out: string[] = [];
  const m = r.meta.machine;
  out.push(
    `Run ${r.meta.date} — \`${r.meta.command}\` — ${m.cpus} CPU (${m.cpuModel}), ${m.memGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres}, RabbitMQ ${m.rabbitmq}, Redis ${m.redis}; load average before ${JSON.stringify(m.loadavg)}${r.meta.loadAfter ? `, after ${JSON.stringify(r.meta.loadAfter)}` : ''}.`,
  );
  out.push('');
  out.push('| figure | C | pipeline | DB ceiling | ratio | broker ceiling | ratio | p50 / p95 / p99 ms (pipeline) | p50 / p95 / p99 ms (DB) | p50 / p95 / p99 ms (broker) |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---|---|---|');
  const c = r.ceilings;
  const concurrencies = new Set<number>([
    ...(r.partake?.available ? r.partake.result.map((p) => p.concurrency) : []),
    ...(c?.dbPartake.map((p) => p.concurrency) ?? []),
    ...(c?.brokerRpc.map((p) => p.concurrency) ?? []),
    ...(r.partake && !r.partake.available ? ((r.meta.options.concurrency as number[] | undefined) ?? []) : []),
  ]);
  for (const k of [...concurrencies].sort((a, b) => a - b)) {
    const p = r.partake?.available ? r.partake.result.find((x) => x.concurrency === k) : undefined;
    const db = c?.dbPartake.find((x) => x.concurrency === k);
    const br = c?.brokerRpc.find((x) => x.concurrency === k);
    const pipe = r.partake && !r.partake.available ? `n/a` : f(p?.throughput);
    out.push(
      `| partake /s | ${k} | ${pipe} | ${f(db?.throughput)} | ${ratio(p?.throughput, db?.throughput)} | ${f(br?.throughput)} | ${ratio(p?.throughput, br?.throughput)} | ${lat(p?.latency)} | ${lat(db?.latency)} | ${lat(br?.latency)} |`,
    );
  }
  if (r.partakeHalfPeak) {
    const h = r.partakeHalfPeak;
    out.push(`| partake /s, open loop at half of peak (${h.rate}/s offered) | – | ${f(h.throughput)} | | | | | ${lat(h.latency)} | | |`);
  }
  if (r.recharge || c?.dbRecharge.length) {
    const rr = r.recharge?.available ? r.recharge.result : undefined;
    const dbBest = best(c?.dbRecharge);
    const dbAt = c?.dbRecharge.find((p) => p.throughput === dbBest);
    const pipe = r.recharge && !r.recharge.available ? 'n/a' : f(rr?.perSecond);
    out.push(
      `| recharge orders /s (N=${rr?.n ?? '–'}) | ${rr ? 'prefetch' : '–'} | ${pipe} | ${f(dbBest)}${dbAt ? ` (C=${dbAt.concurrency})` : ''} | ${ratio(rr?.perSecond, dbBest)} | ${f(c?.brokerPubSub?.perSecond)} | ${ratio(rr?.perSecond, c?.brokerPubSub?.perSecond)} | – | ${lat(dbAt?.latency)} | – |`,
    );
    if (rr)
      out.push(
        `| recharge committed /s (shards polled) | | ${f(rr.committedPerSecond)} | | ${ratio(rr.committedPerSecond, dbBest)} | | ${ratio(rr.committedPerSecond, c?.brokerPubSub?.perSecond)} | | | |`,
      );
  }
  if (r.outbox) {
    const o = r.outbox.available ? r.outbox.result : undefined;
    const v = (l?: Latency) => (l?.n ? `${f(l.p50)} / ${f(l.p99)}` : '–');
    out.push(`| outbox delay ms p50 / p99, ${o ? `${o.rate}/s light load` : 'light load'} | | ${r.outbox.available ? v(o?.delay) : 'n/a'} | | | | | | | |`);
    for (const [k, l] of Object.entries(o?.underLoad ?? {})) out.push(`| outbox delay ms p50 / p99, during ${k} | | ${v(l)} | | | | | | | |`);
  }
  out.push('');
  for (const [name, a] of [
    ['partake', r.partake],
    ['recharge', r.recharge],
    ['outbox', r.outbox],
  ] as const) {
    if (a && !a.available) out.push(`- ${name}: not available: ${a.reason}`);
  }
  if (r.partake?.available) {
    for (const p of r.partake.result) {
      const refused = Object.entries(p.refused)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
      out.push(`- partake C=${p.concurrency}: ${p.created} created, ${p.existing} returned the open order${refused ? `, refused ${refused}` : ''}, ${p.errors} errors`);
    }
  }
  if (r.partakeHalfPeak) {
    const h = r.partakeHalfPeak;
    out.push(`- partake open loop: ${h.sent} sent at ${h.rate}/s, latency timed from each request's due time; ${h.late} found no free user on time, ${h.errors} errors`);
  }
  if (r.recharge?.available) {
    const x = r.recharge.result;
    out.push(
      `- recharge: ${x.completed} completed + ${x.rejected} rejected of ${x.n} over ${x.users} users in ${x.seconds} s (published in ${x.publishSeconds} s; all committed after ${x.committedSeconds} s)${x.timedOut ? ' — TIMED OUT' : ''}`,
    );
  }
  if (c?.variants?.length) {
    out.push('');
    out.push("Database-side hot-path variants (pgbench, same shards; each point paired with a run of the handlers' SQL just before it):");
    out.push('');
    out.push("| variant | C | per s | handlers' SQL per s (paired) | ratio | p50 / p95 / p99 ms |");
    out.push('|---|---:|---:|---:|---:|---|');
    for (const v of c.variants) {
      for (const p of v.points) {
        const base = (v.paired ?? (v.kind === 'partake' ? c.dbPartake : c.dbRecharge)).find((x) => x.concurrency === p.concurrency);
        out.push(`| ${v.name} (${v.about}) | ${p.concurrency} | ${f(p.throughput)} | ${f(base?.throughput)} | ${ratio(p.throughput, base?.throughput)} | ${lat(p.latency)} |`);
      }
    }
    out.push('');
  }
  if (r.rss) {
    const peaks = Object.entries(r.rss.peaks)
      .map(([k, v]) => `${k} ${v} MB`)
      .join(', ');
    out.push(`- peak RSS: ${peaks || 'not sampled'}`);
    for (const [ph, m] of Object.entries(r.rss.phases))
      out.push(
        `  - during ${ph}: ${Object.entries(m)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    for (const [ph, m] of Object.entries(r.rss.cpu ?? {}))
      out.push(
        `- CPU seconds during ${ph}: ${Object.entries(m)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    const cpu = r.rss.cpu ?? {};
    const partakes = (r.partake?.available ? r.partake.result.reduce((a, p) => a + p.requests, 0) : 0) + (r.partakeHalfPeak?.sent ?? 0);
    if (partakes && cpu.partake?.partake) out.push(`- partake worker CPU per partake (its \`used\` message included): ${((1000 * cpu.partake.partake) / partakes).toFixed(2)} ms`);
    const rr = r.recharge?.available ? r.recharge.result : undefined;
    if (rr && cpu.recharge?.recharge)
      out.push(
        `- recharge worker CPU per recharge: ${((1000 * cpu.recharge.recharge) / rr.n).toFixed(2)} ms; relay (task-compensation) CPU per event: ${((1000 * (cpu.recharge['task-compensation'] ?? 0)) / rr.n).toFixed(2)} ms`,
      );
  }
  if (r.cpu?.spans.length) out.push('', ...cpuTable(r));
  if (r.dbWork?.length) out.push('', ...dbWorkTable(r.dbWork), '', ...walByTableTable(r.dbWork));
  if (r.postgresProfiles?.length) out.push('', PROFILE_ABOUT, '', ...profileTable(r.postgresProfiles, r.cpu?.spans ?? []));
  return out.join('\n');
}

/** What `profileTable`'s columns mean. */
export const PROFILE_ABOUT =
  'PostgreSQL CPU per message by where it goes (`--profile`: perf samples of the `postgres` processes over the span, split by the server function they fall under, times the span\'s PostgreSQL CPU from /proc; "executor run" is executing the statements: reading and writing rows, index lookups, triggers; "executor start and end" sets up and closes each execution\'s plan (opening and locking its tables); "commit" includes its WAL flush; "reading the client" is waiting for and receiving the next message; "outside client backends" is autovacuum, the WAL writer, the checkpointer and samples without a call chain):';

/** The DB ceiling run beside the broker ceiling's rpc loop, against the pipeline: per level, and each side's cheapest. */
export function besideBrokerLines(rows: readonly CpuRow[]): string[] {
  const out: string[] = [];
  for (const x of rows) {
    const b = x.dbCeilingBesideBroker;
    if (b?.postgresMs === undefined) continue;
    const level = x.scenario === 'recharge' ? `DB ceiling C=${b.concurrency}` : `C=${x.concurrency}`;
    out.push(
      `- ${x.scenario} ${level}, the DB ceiling beside the broker ceiling's rpc loop at the same C: ${ms(b.postgresMs)} ms of PostgreSQL CPU per transaction (alone ${ms(x.dbCeiling?.postgresMs)}); ceiling ÷ pipeline ${times(x.postgresBesideBrokerOverPipeline)} (alone ${times(x.postgresCeilingOverPipeline)})`,
    );
  }
  for (const scenario of ['partake', 'recharge'] as const) {
    const c = cheapestBesideBroker(rows, scenario);
    if (c)
      out.push(
        `- ${scenario}, cheapest level of each, the DB ceiling beside the broker ceiling: ${ms(c.ceiling.postgresMs)} ms (C=${c.ceiling.concurrency}) against the pipeline's ${ms(c.pipeline.postgresMs)} ms: ceiling ÷ pipeline ${times(c.ceilingOverPipeline)}`,
      );
  }
  return out;
}

/** `--profile`: each sampled span's PostgreSQL CPU per message, split by where its samples fall. */
export function profileTable(profiles: readonly PostgresProfile[], spans: readonly CpuSpan[]): string[] {
  const out = [`| span | messages | PostgreSQL CPU ms per message | ${BUCKETS.join(' | ')} | samples |`, `|---|---:|---:|${BUCKETS.map(() => '---:').join('|')}|---:|`];
  for (const p of profiles) {
    const span = spans.find((s) => s.name === p.span);
    const by = msPerMessage(p, span, SOURCES.postgres);
    const total = span?.messages && span.cpu[SOURCES.postgres] !== undefined ? (1000 * span.cpu[SOURCES.postgres]!) / span.messages : undefined;
    out.push(`| ${p.span} | ${span?.messages ?? '–'} | ${ms(total)} | ${BUCKETS.map((b) => ms(by?.[b])).join(' | ')} | ${p.samples} |`);
  }
  return out;
}

/** ms with 2 decimals below 10 (per-message CPU is mostly 0.0x–2 ms), else 3 significant digits. */
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : Math.abs(v) < 10 ? v.toFixed(2) : String(round(v)));
const times = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}×`);

const ROW_NAMES: Record<string, string> = {
  partake: 'partake (its `used` included)',
  'partake open loop': 'partake, open loop at half of peak',
  recharge: 'recharge',
  outbox: 'recharge at light load (outbox run)',
};

/**
 * CPU per message of PostgreSQL, RabbitMQ and Redis, pipeline against ceiling, and where the
 * pipeline's CPU goes; then each span's CPU seconds with the machine's busy time, so that what
 * other processes used during a span shows.
 */
function cpuTable(r: Results): string[] {
  const out: string[] = [];
  const cpu = r.cpu!;
  out.push('CPU per message, ms (user + system time from /proc, exited children included: see "What is measured"):');
  out.push('');
  out.push(
    '| per message | C | PostgreSQL: pipeline | PostgreSQL: DB ceiling, per pgbench transaction | database work per message, ceiling ÷ pipeline | RabbitMQ: pipeline | RabbitMQ: broker ceiling | broker work, ceiling ÷ pipeline | Redis: pipeline | pipeline total = workers + PostgreSQL + RabbitMQ + Redis + bench driver |',
  );
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const x of cpu.perMessage) {
    const p = x.pipeline;
    const c = x.scenario === 'recharge' ? `${p ? 'prefetch' : '–'}${x.dbCeiling?.concurrency !== undefined ? `; DB ceiling C=${x.dbCeiling.concurrency}` : ''}` : (x.concurrency ?? '–');
    const parts = p ? [SOURCES.workers, SOURCES.postgres, SOURCES.rabbitmq, SOURCES.redis, SOURCES.driver].map((k) => ms(p.ms[k])).join(' + ') : '';
    const total = p ? (p.totalMs !== undefined ? `**${ms(p.totalMs)}** = ${parts}` : parts) : '–';
    out.push(
      `| ${ROW_NAMES[x.scenario] ?? x.scenario} | ${c} | ${ms(p?.ms[SOURCES.postgres])} | ${ms(x.dbCeiling?.postgresMs)} | ${times(x.postgresCeilingOverPipeline)} | ${ms(p?.ms[SOURCES.rabbitmq])} | ${ms(x.brokerCeiling?.rabbitmqMs)} | ${times(x.rabbitmqCeilingOverPipeline)} | ${ms(p?.ms[SOURCES.redis])} | ${total} |`,
    );
  }
  out.push('');
  for (const [name, c] of Object.entries(cpu.cheapest ?? {})) {
    if (!c) continue;
    const at = (k?: number) => (k === undefined ? 'prefetch' : `C=${k}`);
    out.push(
      `- ${name}, cheapest level of each: DB ceiling ${ms(c.ceiling.postgresMs)} ms of PostgreSQL CPU per transaction (${at(c.ceiling.concurrency)}), pipeline ${ms(c.pipeline.postgresMs)} ms per message (${at(c.pipeline.concurrency)}): ceiling ÷ pipeline ${times(c.ceilingOverPipeline)} (the ceiling's cost per transaction grows with its connections; the pipeline's pool does not)`,
    );
  }
  out.push(...besideBrokerLines(cpu.perMessage));
  for (const idle of cpu.spans.filter((s) => s.kind === 'idle' && s.seconds > 0)) {
    const rate = (k: string) => (idle.cpu[k] === undefined ? undefined : `${k} ${Math.round((1000 * idle.cpu[k]!) / idle.seconds)}`);
    const rates = [SOURCES.postgres, SOURCES.rabbitmq, SOURCES.redis, SOURCES.workers, MACHINE, STOLEN].map(rate).filter(Boolean).join(', ');
    const what = idle.cpu[SOURCES.workers] === undefined ? 'nothing of the bench running' : '`npm start` ready, no messages';
    out.push(`- CPU ms per second, ${idle.name} (${idle.seconds} s, ${what}): ${rates}`);
  }
  const cpus = Number(r.meta.machine.cpus) || undefined;
  for (const s of cpu.spans) {
    if (s.kind === 'idle') continue;
    const listed = Object.entries(s.cpu).filter(([k]) => k !== MACHINE && k !== STOLEN);
    const sum = listed.reduce((a, [, v]) => a + v, 0);
    const busy = s.cpu[MACHINE];
    const what = s.kind === 'db ceiling' ? 'transactions' : 'messages';
    const machine =
      busy === undefined
        ? ''
        : `; machine busy ${round(busy)} of ${cpus ? `${round(cpus * s.seconds)} (${cpus} CPUs × ${s.seconds} s)` : `? (${s.seconds} s)`}, stolen ${s.cpu[STOLEN] ?? '–'}, not in the listed processes ${round(busy - sum)}`;
    const changed = s.changed?.length ? `; restarted during the span (no figure): ${s.changed.join(', ')}` : '';
    const slow = s.readMs > 50 ? `; reading /proc took up to ${s.readMs} ms` : '';
    out.push(`- CPU seconds during ${s.name} (${s.seconds} s, ${s.messages} ${what}): ${listed.map(([k, v]) => `${k} ${v}`).join(', ')}${machine}${changed}${slow}`);
  }
  // Other processes on the machine also load the shared services (other databases, vhosts, dbs):
  // say where they were busy, since those figures then hold some of their work.
  const busy = cpu.spans.filter((s) => {
    const other =
      (s.cpu[MACHINE] ?? 0) -
      Object.entries(s.cpu)
        .filter(([k]) => k !== MACHINE && k !== STOLEN)
        .reduce((a, [, v]) => a + v, 0);
    return s.kind !== 'idle' && cpus !== undefined && other > 0.1 * cpus * s.seconds;
  });
  if (busy.length)
    out.push(
      `- **other processes used over 10 % of the machine** during ${busy.map((s) => s.name).join('; ')}: the PostgreSQL, RabbitMQ and Redis figures of those spans may hold some of their work (other databases, vhosts, Redis dbs on the same servers)`,
    );
  const poll = r.recharge?.available ? r.recharge.result.pollSeconds : undefined;
  if (poll !== undefined) out.push(`- the recharge span's PostgreSQL figure includes the bench's own polls of the outbox rows: ${poll} s of query time (wall clock, an upper bound of their CPU)`);
  return out;
}

/**
 * Pipeline against the bare transaction (the DB ceiling), per message on the shard databases: the
 * CPU, WAL, transactions, statements and rows behind each saving or cost. Partake pairs the same C;
 * the recharge pipeline (at its prefetch) is held against each ceiling level.
 */
export function dbWorkTable(rows: readonly DbWorkRow[]): string[] {
  const out: string[] = [];
  out.push(
    "Database work per message on the shard databases (from their WAL, read with pg_waldump: only the records of the bench's own shard databases and the commits of their transactions; transactions = commit records, i.e. transactions that wrote; rows written = heap inserts, updates, deletes, with the HOT updates among them; statements = round trips: the workers' `aq_db_statements_total`, the pgbench script's commands):",
  );
  out.push('');
  out.push(
    '| per message | C | PostgreSQL CPU ms: pipeline / ceiling | ceiling ÷ pipeline | WAL bytes: pipeline / ceiling | ceiling ÷ pipeline | WAL bytes without full-page images | transactions | statements (round trips) | rows written | of which HOT updates | rows locked |',
  );
  out.push('|---|---|---|---:|---|---:|---|---|---|---|---|---|');
  const pair = (a: number | undefined, b: number | undefined, digits = 2) =>
    `${a === undefined || !Number.isFinite(a) ? '–' : a.toFixed(digits)} / ${b === undefined || !Number.isFinite(b) ? '–' : b.toFixed(digits)}`;
  const quotient = (c: number | undefined, p: number | undefined) => (c !== undefined && p ? `${(c / p).toFixed(2)}×` : '–');
  for (const kind of ['partake', 'recharge'] as const) {
    const pipes = rows.filter((x) => x.side === 'pipeline' && x.scenario === kind);
    const ceilings = rows.filter((x) => x.side === 'db ceiling' && x.scenario === kind);
    const pairs =
      kind === 'partake'
        ? [...new Set([...pipes, ...ceilings].map((x) => x.concurrency))]
            .sort((a, b) => (a ?? 0) - (b ?? 0))
            .map((c) => [pipes.find((x) => x.concurrency === c), ceilings.find((x) => x.concurrency === c), `${c ?? '–'}`] as const)
        : (ceilings.length ? ceilings : [undefined]).map((c) => [pipes[0], c, `${pipes[0] ? 'prefetch' : '–'}${c ? `; ceiling C=${c.concurrency}` : ''}`] as const);
    for (const [p, c, at] of pairs) {
      if (!p && !c) continue;
      out.push(
        `| ${kind === 'partake' ? 'partake (its `used` included)' : 'recharge'} | ${at} | ${pair(p?.postgresMs, c?.postgresMs)} | ${quotient(c?.postgresMs, p?.postgresMs)} | ${pair(p?.walBytes, c?.walBytes, 0)} | ${quotient(c?.walBytes, p?.walBytes)} | ${pair(p?.walBytesNoFpi, c?.walBytesNoFpi, 0)} | ${pair(p?.transactions, c?.transactions)} | ${pair(p?.statements, c?.statements)} | ${pair(p?.rowsWritten, c?.rowsWritten)} | ${pair(p?.hotUpdates, c?.hotUpdates)} | ${pair(p?.rowsLocked, c?.rowsLocked)} |`,
      );
    }
  }
  out.push('');
  for (const x of rows) {
    const note = x.walNote ? `; ${x.walNote}` : '';
    out.push(
      `- ${x.side} ${x.scenario}${x.concurrency !== undefined ? ` C=${x.concurrency}` : ''}: ${x.messages} messages; the whole server's WAL ${round(x.serverWalBytes)} bytes per message (other databases included)${note}`,
    );
  }
  return out;
}

/** The outbox's relations: the rows a different outbox design could drop. */
const OUTBOX_RELATIONS = new Set(['task']);

/** A ceiling row's WAL per message, all of it and its business rows' (without the outbox and the commit records). */
export function walBound(c: DbWorkRow | undefined): { all: number; business: number; withTasks: number } | undefined {
  if (!c?.walByTable) return undefined;
  const entries = Object.entries(c.walByTable);
  const all = entries.reduce((a, [, v]) => a + v, 0);
  const business = entries.filter(([t]) => !OUTBOX_RELATIONS.has(t) && t !== COMMITS).reduce((a, [, v]) => a + v, 0);
  // The contract (§6) keeps a task row per event: the ceiling's own inserts, no completion marks.
  const withTasks = all - (c.walByTable[COMMITS] ?? 0);
  return business > 0 ? { all, business, withTasks } : undefined;
}

/**
 * Where each side's WAL goes, by table, at C = 16 (or the first level measured), and the bound it
 * sets: the business rows (every table but the outbox `task` and the commit records) are written
 * by the same statements on both sides, so the pipeline cannot write less than the ceiling's
 * business rows, whatever its outbox does.
 */
export function walByTableTable(rows: readonly DbWorkRow[]): string[] {
  const pick = (side: DbWorkRow['side'], kind: DbWorkRow['scenario']) => {
    const xs = rows.filter((x) => x.side === side && x.scenario === kind && x.walByTable);
    return xs.find((x) => x.concurrency === 16 || (side === 'pipeline' && kind === 'recharge')) ?? xs[0];
  };
  const cols = (['partake', 'recharge'] as const).flatMap((k) => [pick('pipeline', k), pick('db ceiling', k)]).filter((x): x is DbWorkRow => !!x);
  if (!cols.length) return [];
  const tables = [...new Set(cols.flatMap((c) => Object.keys(c.walByTable!)))].sort((a, b) => (a === COMMITS ? 1 : b === COMMITS ? -1 : a.localeCompare(b)));
  const label = (c: DbWorkRow) => `${c.scenario} ${c.side}${c.concurrency !== undefined ? ` C=${c.concurrency}` : ''}`;
  const out = [
    'WAL bytes per message by table (no full-page images; a table with its indexes, TOAST, id sequence and split tables; records by their first block):',
    '',
    `| table | ${cols.map(label).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    ...tables.map((t) => `| ${t === COMMITS ? t : `\`${t}\``} | ${cols.map((c) => f(c.walByTable![t] ?? 0)).join(' | ')} |`),
    `| all | ${cols.map((c) => f(Object.values(c.walByTable!).reduce((a, b) => a + b, 0))).join(' | ')} |`,
    '',
  ];
  for (const kind of ['partake', 'recharge'] as const) {
    const bound = walBound(pick('db ceiling', kind));
    if (!bound) continue;
    const { all, business, withTasks } = bound;
    out.push(
      `- ${kind}: the ceiling's business rows (all but \`task\` and the commit records) ${f(business)} bytes of its ${f(all)}; ceiling ÷ pipeline ≥ 1.5 needs the pipeline at ≤ ${f(all / 1.5)} bytes, so even a pipeline without any outbox rows or commits would reach at most ${(all / business).toFixed(2)}× while it writes those rows; with a task row per event as the contract's outbox keeps (the ceiling's own \`task\` bytes) but no completion marks and no commits, at most ${(all / withTasks).toFixed(2)}×`,
    );
  }
  return out;
}

/** Throughput (left axis, lines) and p99 (right axis, dashed) against concurrency, hand-written SVG. */
export function chart(r: Results): string {
  type Series = { name: string; color: string; pts: Array<[number, number]>; p99: Array<[number, number]> };
  const series: Series[] = [];
  const add = (name: string, color: string, ps: ReadonlyArray<{ concurrency: number; throughput: number; latency: Latency }> | undefined) => {
    if (ps?.length) series.push({ name, color, pts: ps.map((p) => [p.concurrency, p.throughput]), p99: ps.map((p) => [p.concurrency, p.latency.p99]) });
  };
  add('partake pipeline', '#d62728', r.partake?.available ? r.partake.result : undefined);
  add('DB ceiling (partake SQL)', '#1f77b4', r.ceilings?.dbPartake);
  add('broker ceiling (rpc echo)', '#2ca02c', r.ceilings?.brokerRpc);
  add('DB ceiling (recharge SQL)', '#9467bd', r.ceilings?.dbRecharge);
  const W = 760,
    H = 420,
    L = 70,
    R = 70,
    T = 40,
    B = 90;
  const xs = [...new Set(series.flatMap((s) => s.pts.map((p) => p[0])))].sort((a, b) => a - b);
  const xOf = (c: number) => L + (xs.length <= 1 ? (W - L - R) / 2 : ((Math.log2(c) - Math.log2(xs[0]!)) / (Math.log2(xs[xs.length - 1]!) - Math.log2(xs[0]!))) * (W - L - R));
  const nice = (v: number) => {
    if (!(v > 0)) return 1;
    const e = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 2.5, 5, 10].map((k) => k * e).find((k) => k >= v)!;
  };
  const yMax = nice(Math.max(1, ...series.flatMap((s) => s.pts.map((p) => p[1]))) * 1.05);
  const lMax = nice(Math.max(1, ...series.flatMap((s) => s.p99.map((p) => p[1]).filter(Number.isFinite))) * 1.05);
  const yOf = (v: number) => H - B - (v / yMax) * (H - T - B);
  const lOf = (v: number) => H - B - (v / lMax) * (H - T - B);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Throughput (solid, left) and p99 latency (dashed, right) against concurrency</text>`);
  for (let i = 0; i <= 5; i++) {
    const y = T + ((H - T - B) * i) / 5;
    o.push(`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    o.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end">${round(yMax * (1 - i / 5))}</text>`);
    o.push(`<text x="${W - R + 6}" y="${y + 4}">${round(lMax * (1 - i / 5))}</text>`);
  }
  for (const c of xs) o.push(`<text x="${xOf(c)}" y="${H - B + 18}" text-anchor="middle">${c}</text>`);
  o.push(`<text x="${(L + W - R) / 2}" y="${H - B + 36}" text-anchor="middle">concurrent callers / clients (C)</text>`);
  o.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">transactions or requests per second</text>`);
  o.push(`<text transform="translate(${W - 14} ${(T + H - B) / 2}) rotate(90)" text-anchor="middle">p99 latency, ms</text>`);
  o.push(
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/><line x1="${W - R}" x2="${W - R}" y1="${T}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`,
  );
  series.forEach((s, i) => {
    o.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.pts.map(([c, v]) => `${xOf(c).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ')}"/>`);
    for (const [c, v] of s.pts) o.push(`<circle cx="${xOf(c).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const p = s.p99.filter(([, v]) => Number.isFinite(v));
    o.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="5 4" points="${p.map(([c, v]) => `${xOf(c).toFixed(1)},${lOf(v).toFixed(1)}`).join(' ')}"/>`);
    const lx = L + (i % 2) * 330,
      ly = H - 34 + Math.floor(i / 2) * 18;
    o.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/><text x="${lx + 30}" y="${ly}">${s.name}</text>`);
  });
  if (!series.length) o.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no figures</text>`);
  o.push('</svg>');
  return o.join('\n') + '\n';
}

const TABLE_START = '<!-- bench:table:start -->';
const TABLE_END = '<!-- bench:table:end -->';

/**
 * Writes bench/out/ (always) and, for a full run, docs/benchmarks.{json,svg} and the table between
 * the markers in docs/BENCHMARKS.md.
 */
export function writeReport(r: Results, root: string, toDocs: boolean): string[] {
  const outDir = path.join(root, 'bench', 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = r.meta.date.replace(/[:.]/g, '-');
  const md = markdown(r);
  const svg = chart(r);
  const json = JSON.stringify(r, null, 2) + '\n';
  const files = [path.join(outDir, `results-${stamp}.json`), path.join(outDir, 'latest.json'), path.join(outDir, 'latest.md'), path.join(outDir, 'latest.svg')];
  fs.writeFileSync(files[0]!, json);
  fs.writeFileSync(files[1]!, json);
  fs.writeFileSync(files[2]!, md + '\n');
  fs.writeFileSync(files[3]!, svg);
  if (toDocs) {
    const docs = path.join(root, 'docs');
    fs.writeFileSync(path.join(docs, 'benchmarks.json'), json);
    fs.writeFileSync(path.join(docs, 'benchmarks.svg'), svg);
    files.push(path.join(docs, 'benchmarks.json'), path.join(docs, 'benchmarks.svg'));
    const bm = path.join(docs, 'BENCHMARKS.md');
    if (fs.existsSync(bm)) {
      const text = fs.readFileSync(bm, 'utf8');
      const a = text.indexOf(TABLE_START),
        b = text.indexOf(TABLE_END);
      if (a >= 0 && b > a) {
        fs.writeFileSync(bm, `${text.slice(0, a + TABLE_START.length)}\n${md}\n${text.slice(b)}`);
        files.push(bm);
      }
    }
  }
  return files;
}
