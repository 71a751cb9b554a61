import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { now, round } from './support';

/**
 * CPU seconds of the backing services (PostgreSQL, RabbitMQ, Redis), of the pipeline's workers, of
 * the ceilings' clients and of the bench itself over named spans of a run, read from /proc at the
 * span's start and end. Everything shares one small machine, so throughput alone cannot say which
 * side is cheaper; the CPU each process spends per message can (e.g. PostgreSQL's CPU per partake in
 * the pipeline against per pgbench transaction in the DB ceiling).
 *
 * A process tree's CPU = for the root and every live descendant, its own user + system time plus
 * that of its exited children (cutime + cstime: the kernel adds a child's time, its own children's
 * included, to the parent that reaps it). So a backend that exits during a span (pgbench's backends
 * at the end of each run) still counts, through the postmaster's cutime.
 */

/** Clock ticks per second of the times in /proc/<pid>/stat (USER_HZ): `getconf CLK_TCK` once, else 100. */
export const CLK_TCK = (() => {
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim());
    return v > 0 ? v : 100;
  } catch {
    return 100;
  }
})();

type Proc = Readonly<{ pid: number; ppid: number; comm: string; state: string; start: number; threads: number; own: number; reaped: number }>;

/** Every process of /proc: ids, command name, start time and CPU ticks (own, exited children's). */
type Table = Readonly<{ procs: Map<number, Proc>; children: Map<number, number[]> }>;

function readProc(pid: number): Proc | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    // After the command: 0 state, 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime, 17 num_threads,
    // 19 starttime. Zombies are kept: their time reaches the parent's cutime only once they are reaped.
    return {
      pid,
      ppid: Number(f[1]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      state: f[0]!,
      start: Number(f[19]),
      threads: Number(f[17]),
      own: Number(f[11]) + Number(f[12]),
      reaped: Number(f[13]) + Number(f[14]),
    };
  } catch {
    return undefined;
  }
}

function scan(): Table {
  const procs = new Map<number, Proc>();
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (!p) continue;
    procs.set(p.pid, p);
    const c = children.get(p.ppid);
    if (c) c.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  return { procs, children };
}

/**
 * A live process's own CPU seconds. /proc/<pid>/stat cuts utime and stime down to whole ticks
 * (10 ms), ~10 ms short per process on average, while a process that exits reaches its parent's
 * cutime to the nanosecond: a span that starts with 64 live backends and ends after they exited
 * would count ~0.6 s too much. So a single-threaded process (a PostgreSQL backend) is read from
 * /proc/<pid>/schedstat (run time in ns, the same total); others from stat, whose cut-off errors
 * cancel out for processes alive at both ends of a span.
 */
function ownSeconds(p: Proc): number {
  if (p.threads === 1) {
    try {
      const ns = Number(fs.readFileSync(`/proc/${p.pid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(ns)) return ns / 1e9;
    } catch {
      /* gone, or no schedstat: ticks */
    }
  }
  return p.own / CLK_TCK;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/**
 * One source's cumulative CPU seconds now. `key` names the processes read (pid and start time of
 * each root): when it differs between a span's start and end (a service restarted, a worker group
 * not started yet), the span has no figure for that source. `parents`: processes that reap others
 * in the tree, re-read after the scan to catch a child reaped in the middle of it.
 */
export type Reading = Readonly<{ seconds: number; key: string; parents: readonly number[] }>;
export type Source = (t: Table) => Reading | undefined;

/** Own + exited children's ticks of `roots` and all their live descendants. */
function trees(t: Table, roots: readonly Proc[]): Reading | undefined {
  if (!roots.length) return undefined;
  let seconds = 0;
  const parents: number[] = [];
  const seen = new Set<number>();
  const stack = roots.map((r) => r.pid);
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const p = t.procs.get(pid);
    if (!p) continue;
    seconds += ownSeconds(p) + p.reaped / CLK_TCK;
    const kids = t.children.get(pid) ?? [];
    if (kids.length || p.reaped) parents.push(pid);
    stack.push(...kids);
  }
  return { seconds, key: roots.map((r) => `${r.pid}@${r.start}`).join(','), parents };
}

/** The process tree under `pid` (a worker group, the echo worker). */
export const treeOf =
  (pid: number): Source =>
  (t) => {
    const p = t.procs.get(pid);
    return p ? trees(t, [p]) : undefined;
  };

/**
 * PostgreSQL: the postmaster of `dataDirectory` (first line of its postmaster.pid, when readable),
 * else every `postgres` process whose parent is not a `postgres` process. Its tree holds the
 * backends, autovacuum, checkpointer, walwriter and so on; exited backends are in its cutime.
 */
export function postgresSource(dataDirectory?: string): Source {
  let fromFile: number | undefined;
  if (dataDirectory) {
    try {
      fromFile = Number(fs.readFileSync(`${dataDirectory}/postmaster.pid`, 'utf8').split('\n')[0]);
    } catch {
      /* not readable (another user, a container): scan instead */
    }
  }
  return (t) => {
    const pm = fromFile !== undefined ? t.procs.get(fromFile) : undefined;
    if (pm && pm.comm === 'postgres') return trees(t, [pm]);
    return trees(
      t,
      [...t.procs.values()].filter((p) => p.comm === 'postgres' && t.procs.get(p.ppid)?.comm !== 'postgres'),
    );
  };
}

/**
 * RabbitMQ: the `beam.smp` that booted rabbit (`-s rabbit boot`), with its children
 * (erl_child_setup, inet_gethost). A `rabbitmqctl` call runs a beam.smp of its own: not counted.
 */
export function rabbitmqSource(): Source {
  const isServer = new Map<string, boolean>();
  return (t) => {
    const beams = [...t.procs.values()].filter((p) => p.comm === 'beam.smp');
    const servers = beams.filter((p) => {
      const k = `${p.pid}@${p.start}`;
      if (!isServer.has(k)) isServer.set(k, /-s rabbit boot/.test(cmdline(p.pid)));
      return isServer.get(k);
    });
    // Without the boot argument (another start script): the oldest beam.smp.
    const roots = servers.length ? servers : beams.sort((a, b) => a.start - b.start).slice(0, 1);
    return trees(t, roots);
  };
}

/** Redis: the `redis-server` listening on `port` (its command line names it), else every one. */
export function redisSource(port: string): Source {
  return (t) => {
    const all = [...t.procs.values()].filter((p) => p.comm === 'redis-server');
    const mine = all.filter((p) => cmdline(p.pid).includes(`:${port}`));
    return trees(t, mine.length ? mine : all);
  };
}

/** The bench process itself (callers, event tap, polling). */
export const driverSource: Source = () => {
  const u = process.cpuUsage();
  return { seconds: (u.user + u.system) / 1e6, key: 'self', parents: [] };
};

/**
 * pgbench: the bench's live `pgbench` children and all its exited children (pgbench runs, reaped
 * when they end). Both, because a span may start while a run is going (after its first second)
 * and end after it was reaped: the exited time alone would count the run's whole life.
 */
export const benchChildrenSource: Source = (t) => {
  const self = t.procs.get(process.pid);
  if (!self) return undefined;
  const live = (t.children.get(process.pid) ?? []).map((pid) => t.procs.get(pid)!).filter((p) => p.comm === 'pgbench');
  const seconds = live.reduce((a, p) => a + ownSeconds(p) + p.reaped / CLK_TCK, self.reaped / CLK_TCK);
  return { seconds, key: 'self', parents: [process.pid] };
};

/** /proc/stat: CPU time the whole machine was busy (user, nice, system, irq, softirq), and stolen by the hypervisor. */
function machineTicks(): { busy: number; steal: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, steal: f[7] ?? 0 };
  } catch {
    return undefined;
  }
}

export const machineSource: Source = () => {
  const m = machineTicks();
  return m && { seconds: m.busy / CLK_TCK, key: 'machine', parents: [] };
};

export const stealSource: Source = () => {
  const m = machineTicks();
  return m && { seconds: m.steal / CLK_TCK, key: 'machine', parents: [] };
};

/** Sources that are not processes of the run (left out of "not in the listed processes"). */
export const MACHINE = 'machine busy';
export const STOLEN = 'stolen by the hypervisor';

/** `db ceiling beside broker`: the DB ceiling while the broker ceiling's rpc loop runs at the same C (bench/run.ts). */
export type SpanKind = 'idle' | 'pipeline' | 'db ceiling' | 'db ceiling beside broker' | 'broker ceiling';
export type SpanScenario = 'idle' | 'partake' | 'partake open loop' | 'recharge' | 'outbox' | 'rpc' | 'publish/consume';

/** CPU seconds of each source over one span, and the messages (or transactions) it handled. */
export type CpuSpan = Readonly<{
  name: string;
  kind: SpanKind;
  scenario: SpanScenario;
  concurrency?: number;
  messages: number;
  seconds: number;
  cpu: Record<string, number>;
  /** Sources whose processes changed during the span (restarted): no figure. */
  changed?: string[];
  /** The longer of the two reads of /proc (ms): the figures' uncertainty in time. */
  readMs: number;
}>;

type Snapshot = Readonly<{ at: number; readMs: number; readings: Map<string, Reading> }>;

export type CpuClock = ReturnType<typeof cpuClock>;

/** Named sources, read together at the start and end of each span; `onStart` may record a span alongside (bench/profile.ts) until it ends. */
export function cpuClock(onStart?: (name: string, kind: SpanKind) => { stop(): void } | undefined) {
  const sources = new Map<string, Source>();
  const spans: CpuSpan[] = [];
  const snapshot = (): Snapshot => {
    // On a saturated machine the bench gets a small share of the CPUs, and reading /proc (a few ms
    // of CPU) would stretch over hundreds of ms, during which the processes read first run on
    // while the machine's counters are read last: their figures would cover different stretches
    // of time. Reading at the highest priority (root only; else as is) keeps a snapshot short.
    const priority = os.getPriority();
    try {
      os.setPriority(-20);
    } catch {
      /* not permitted */
    }
    try {
      for (let attempt = 0; ; attempt++) {
        const t0 = now();
        const t = scan();
        const readings = new Map<string, Reading>();
        for (const [name, s] of sources) {
          const r = s(t);
          if (r) readings.set(name, r);
        }
        // A child reaped between reading it and reading its parent would be lost (or counted twice):
        // read again when any parent's exited-children time moved during the scan.
        const moved = [...readings.values()].some((r) => r.parents.some((pid) => readProc(pid)?.reaped !== t.procs.get(pid)?.reaped));
        const t1 = now();
        if (!moved || attempt >= 4) return { at: (t0 + t1) / 2, readMs: t1 - t0, readings };
      }
    } finally {
      try {
        os.setPriority(priority);
      } catch {
        /* as it was */
      }
    }
  };
  return {
    /** Adds a source (until the returned function removes it). */
    watch(name: string, source: Source): () => void {
      sources.set(name, source);
      return () => void sources.delete(name);
    },
    /** Starts a span; `end(messages)` records it. */
    start(name: string, kind: SpanKind, scenario: SpanScenario, concurrency?: number) {
      const a = snapshot();
      const recording = onStart?.(name, kind);
      return {
        end(messages: number): CpuSpan {
          const b = snapshot();
          recording?.stop();
          const cpu: Record<string, number> = {};
          const changed: string[] = [];
          for (const [k, rb] of b.readings) {
            const ra = a.readings.get(k);
            if (!ra) continue;
            if (ra.key !== rb.key) changed.push(k);
            else cpu[k] = round(rb.seconds - ra.seconds);
          }
          const span: CpuSpan = {
            name,
            kind,
            scenario,
            ...(concurrency !== undefined ? { concurrency } : {}),
            messages,
            seconds: round((b.at - a.at) / 1000),
            cpu,
            ...(changed.length ? { changed } : {}),
            readMs: round(Math.max(a.readMs, b.readMs)),
          };
          spans.push(span);
          return span;
        },
      };
    },
    spans,
  };
}

/** What a span's own processes used, in ms per message, and their sum. */
function perMessage(s: CpuSpan | undefined, names: readonly string[]): Record<string, number> | undefined {
  if (!s?.messages) return undefined;
  const out: Record<string, number> = {};
  for (const n of names) if (s.cpu[n] !== undefined) out[n] = round((1000 * s.cpu[n]!) / s.messages);
  return out;
}

/** Source names, as watched by bench/run.ts. */
export const SOURCES = {
  postgres: 'postgres',
  rabbitmq: 'rabbitmq',
  redis: 'redis',
  workers: 'workers',
  driver: 'bench driver',
  children: 'pgbench',
  echo: 'echo worker',
} as const;

/** The pipeline's own processes: what one of its messages costs the machine. */
const PIPELINE = [SOURCES.workers, SOURCES.postgres, SOURCES.rabbitmq, SOURCES.redis, SOURCES.driver] as const;

/**
 * One line of the per-message CPU table: a pipeline span against the matching DB ceiling span
 * (PostgreSQL CPU per pgbench transaction) and broker ceiling span (RabbitMQ CPU per echo message).
 * All figures are ms of CPU per message.
 */
export type CpuRow = Readonly<{
  scenario: SpanScenario;
  concurrency?: number;
  pipeline?: { messages: number; seconds: number; ms: Record<string, number>; totalMs?: number };
  dbCeiling?: { concurrency?: number; transactions: number; seconds: number; postgresMs?: number; pgbenchMs?: number };
  brokerCeiling?: { concurrency?: number; messages: number; seconds: number; rabbitmqMs?: number; echoMs?: number };
  /** Database work per message, ceiling ÷ pipeline: > 1 means the pipeline costs PostgreSQL less per message. */
  postgresCeilingOverPipeline?: number;
  /** The DB ceiling at the same C run beside the broker ceiling's rpc loop (RabbitMQ, echo worker, driver: the pipeline's other processes' kind of load). */
  dbCeilingBesideBroker?: { concurrency?: number; transactions: number; seconds: number; postgresMs?: number; pgbenchMs?: number };
  /** Its PostgreSQL CPU per transaction ÷ the pipeline's per message. */
  postgresBesideBrokerOverPipeline?: number;
  /** Broker work per message, ceiling ÷ pipeline. */
  rabbitmqCeilingOverPipeline?: number;
}>;

/**
 * The ceiling's PostgreSQL CPU per transaction grows with C (64 backends on 2 CPUs switch and
 * contend), so a ratio at the same C can flatter the pipeline, which uses a small pool whatever C
 * is. This holds the ceiling at its cheapest level against the pipeline at its cheapest.
 */
export type CheapestPair = Readonly<{ ceiling: { concurrency?: number; postgresMs: number }; pipeline: { concurrency?: number; postgresMs: number }; ceilingOverPipeline: number }>;

export function cheapest(rows: readonly CpuRow[], scenario: 'partake' | 'recharge'): CheapestPair | undefined {
  const mine = rows.filter((r) => r.scenario === scenario);
  const ceilings = mine.flatMap((r) => (r.dbCeiling?.postgresMs !== undefined ? [{ concurrency: r.dbCeiling.concurrency, postgresMs: r.dbCeiling.postgresMs }] : []));
  const pipes = mine.flatMap((r) => (r.pipeline?.ms[SOURCES.postgres] !== undefined ? [{ concurrency: r.concurrency, postgresMs: r.pipeline.ms[SOURCES.postgres]! }] : []));
  if (!ceilings.length || !pipes.length) return undefined;
  const c = ceilings.reduce((a, b) => (b.postgresMs < a.postgresMs ? b : a));
  const p = pipes.reduce((a, b) => (b.postgresMs < a.postgresMs ? b : a));
  return { ceiling: c, pipeline: p, ceilingOverPipeline: round(c.postgresMs / p.postgresMs) };
}

/** The DB ceiling beside the broker ceiling at its cheapest level against the pipeline at its cheapest. */
export function cheapestBesideBroker(rows: readonly CpuRow[], scenario: 'partake' | 'recharge'): CheapestPair | undefined {
  const mine = rows.filter((r) => r.scenario === scenario);
  return cheapest(
    mine.map((r) => ({ ...r, dbCeiling: r.dbCeilingBesideBroker })),
    scenario,
  );
}

export function cpuRows(spans: readonly CpuSpan[]): CpuRow[] {
  const find = (kind: SpanKind, scenario: SpanScenario, c?: number) => spans.find((s) => s.kind === kind && s.scenario === scenario && (c === undefined || s.concurrency === c));
  const all = (kind: SpanKind, scenario: SpanScenario) => spans.filter((s) => s.kind === kind && s.scenario === scenario);
  const pipe = (s: CpuSpan | undefined): CpuRow['pipeline'] => {
    const ms = perMessage(s, PIPELINE);
    if (!s || !ms) return undefined;
    const complete = PIPELINE.every((n) => ms[n] !== undefined);
    return { messages: s.messages, seconds: s.seconds, ms, ...(complete ? { totalMs: round(PIPELINE.reduce((a, n) => a + ms[n]!, 0)) } : {}) };
  };
  const db = (s: CpuSpan | undefined): CpuRow['dbCeiling'] => {
    const ms = perMessage(s, [SOURCES.postgres, SOURCES.children]);
    return s && ms ? { concurrency: s.concurrency, transactions: s.messages, seconds: s.seconds, postgresMs: ms[SOURCES.postgres], pgbenchMs: ms[SOURCES.children] } : undefined;
  };
  const broker = (s: CpuSpan | undefined): CpuRow['brokerCeiling'] => {
    const ms = perMessage(s, [SOURCES.rabbitmq, SOURCES.echo]);
    return s && ms ? { concurrency: s.concurrency, messages: s.messages, seconds: s.seconds, rabbitmqMs: ms[SOURCES.rabbitmq], echoMs: ms[SOURCES.echo] } : undefined;
  };
  const ratio = (ceiling: number | undefined, pipeline: number | undefined) => (ceiling !== undefined && pipeline ? round(ceiling / pipeline) : undefined);
  const row = (scenario: SpanScenario, concurrency: number | undefined, p: CpuRow['pipeline'], d: CpuRow['dbCeiling'], b: CpuRow['brokerCeiling'], beside?: CpuRow['dbCeiling']): CpuRow => {
    const r: CpuRow = {
      scenario,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(p ? { pipeline: p } : {}),
      ...(d ? { dbCeiling: d } : {}),
      ...(b ? { brokerCeiling: b } : {}),
      ...(beside ? { dbCeilingBesideBroker: beside } : {}),
    };
    const pg = ratio(d?.postgresMs, p?.ms[SOURCES.postgres]);
    const mq = ratio(b?.rabbitmqMs, p?.ms[SOURCES.rabbitmq]);
    const pgBeside = ratio(beside?.postgresMs, p?.ms[SOURCES.postgres]);
    return {
      ...r,
      ...(pg !== undefined ? { postgresCeilingOverPipeline: pg } : {}),
      ...(mq !== undefined ? { rabbitmqCeilingOverPipeline: mq } : {}),
      ...(pgBeside !== undefined ? { postgresBesideBrokerOverPipeline: pgBeside } : {}),
    };
  };
  const rows: CpuRow[] = [];
  const cs = [...new Set(spans.filter((s) => s.scenario === 'partake' || s.scenario === 'rpc').map((s) => s.concurrency!))].sort((a, b) => a - b);
  for (const c of cs)
    rows.push(
      row('partake', c, pipe(find('pipeline', 'partake', c)), db(find('db ceiling', 'partake', c)), broker(find('broker ceiling', 'rpc', c)), db(find('db ceiling beside broker', 'partake', c))),
    );
  const open = pipe(find('pipeline', 'partake open loop'));
  if (open) rows.push(row('partake open loop', undefined, open, undefined, undefined));
  // The pipeline's recharge runs at its prefetch: held against the recharge ceiling at each C.
  const recharge = pipe(find('pipeline', 'recharge'));
  const pubsub = broker(find('broker ceiling', 'publish/consume'));
  const dbRecharge = all('db ceiling', 'recharge');
  if (dbRecharge.length) for (const s of dbRecharge) rows.push(row('recharge', undefined, recharge, db(s), pubsub, db(find('db ceiling beside broker', 'recharge', s.concurrency))));
  else if (recharge || pubsub) rows.push(row('recharge', undefined, recharge, undefined, pubsub));
  const outbox = pipe(find('pipeline', 'outbox'));
  if (outbox) rows.push(row('outbox', undefined, outbox, undefined, undefined));
  return rows;
}
export { scan as scanProcs, type Table as ProcTable };
