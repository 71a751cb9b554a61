import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CpuSpan } from './cpu';
import { round } from './support';

/**
 * Where PostgreSQL spends its CPU in a span (`npm run bench -- --profile`): Linux `perf` samples
 * the whole machine (all CPUs, with call chains) while the span runs, and the samples of the
 * `postgres` processes are split by the server function they fall under. Each share, times the
 * span's PostgreSQL CPU read from /proc (bench/cpu.ts), gives ms per message: e.g. executing the
 * statements against committing and reading the next request. Both sides of a comparison are
 * sampled the same way, so the sampling's own cost (a few %) cancels in their ratio.
 *
 * Needs `perf` (Debian: `apt-get install linux-perf`) and permission to sample every CPU (root, or
 * `kernel.perf_event_paranoid` ≤ 0); without them the run stops at its start with the reason.
 */

/** A span's PostgreSQL samples by where they fall, as shares (0–1) of all its PostgreSQL samples. */
export type PostgresProfile = Readonly<{ span: string; samples: number; shares: Record<Bucket, number> }>;

export const BUCKETS = ['executor run', 'executor start and end', 'plan cache', 'commit', 'of which WAL flush', 'reading the client', 'other in client backends', 'outside client backends'] as const;
export type Bucket = (typeof BUCKETS)[number];

/** Server functions (inclusive of what they call) behind each bucket; see `sharesOf`. */
const FUNCTIONS: Readonly<Record<string, readonly string[]>> = {
  'executor run': ['standard_ExecutorRun'],
  'executor start and end': ['standard_ExecutorStart', 'standard_ExecutorEnd'],
  'plan cache': ['GetCachedPlan'],
  commit: ['CommitTransactionCommand'],
  'of which WAL flush': ['XLogFlush'],
  'reading the client': ['pq_getbyte'],
};
/** The buckets that do not contain one another (the WAL flush is inside the commit): the rest of the main loop is what they leave. */
const DISJOINT = ['executor run', 'executor start and end', 'plan cache', 'commit', 'reading the client'];
const MAIN = 'PostgresMain';

/** Shares from `perf report --children --sort sym` lines (inclusive and own percentages of all samples) and PostgreSQL's share. */
export function sharesOf(report: string, postgresPercent: number): Record<Bucket, number> {
  const inclusive = new Map<string, number>();
  for (const m of report.matchAll(/^\s*([\d.]+)%\s+[\d.]+%\s+(?:\d+\s+)?\[[.k]\]\s+(\S+)\s*$/gm)) inclusive.set(m[2]!, (inclusive.get(m[2]!) ?? 0) + Number(m[1]));
  const of = (bucket: string) => (FUNCTIONS[bucket] ?? []).reduce((s, fn) => s + (inclusive.get(fn) ?? 0), 0);
  const share = (pct: number) => (postgresPercent > 0 ? round(pct / postgresPercent) : 0);
  const main = inclusive.get(MAIN) ?? 0;
  const named = DISJOINT.reduce((s, b) => s + of(b), 0);
  const rest = { 'other in client backends': Math.max(0, main - named), 'outside client backends': Math.max(0, postgresPercent - main) } as Record<string, number>;
  return Object.fromEntries(BUCKETS.map((b) => [b, share(rest[b] ?? of(b))])) as Record<Bucket, number>;
}

/** Fails with the reason when `perf` cannot sample the machine here. */
export function checkPerf(): void {
  const probe = spawnSync('perf', ['record', '-a', '-F', '99', '-o', '/dev/null', '--', 'true'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.error) throw new Error(`--profile needs Linux perf (Debian: apt-get install linux-perf): ${probe.error.message}`);
  if (probe.status !== 0) throw new Error(`--profile: perf cannot sample every CPU here (root, or kernel.perf_event_paranoid <= 0): ${probe.stderr.trim().split('\n').pop()}`);
}

const run = promisify(execFile);

/**
 * Records spans while they run (`start` when the span starts, `stop` when it ends: perf flushes in
 * the background) and reads the recordings once the run is over, so that reading them does not load
 * the machine during a later span.
 */
export function profiler(dir: string) {
  fs.mkdirSync(dir, { recursive: true });
  const recordings: Array<{ span: string; file: string; exited: Promise<void> }> = [];
  return {
    start(span: string): { stop(): void } {
      const file = path.join(dir, `perf-${recordings.length}.data`);
      const child: ChildProcess = spawn('perf', ['record', '-a', '-g', '-F', '499', '-o', file], { stdio: 'ignore' });
      // A perf that could not start or record leaves no file: that span gets no profile, the run goes on.
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.once('error', () => resolve());
      });
      recordings.push({ span, file, exited });
      return { stop: () => void child.kill('SIGINT') };
    },
    /** Every recording's shares, by span name; the recordings and their folder are deleted. */
    async read(): Promise<PostgresProfile[]> {
      const out: PostgresProfile[] = [];
      for (const r of recordings) {
        await r.exited;
        const args = ['report', '-i', r.file, '--stdio', '-g', 'none', '--comm', 'postgres'];
        try {
          const byComm = (await run('perf', [...args, '--no-children', '--sort', 'comm', '-n'], { maxBuffer: 64 << 20 })).stdout;
          const m = /^\s*([\d.]+)%\s+(\d+)\s+postgres\s*$/m.exec(byComm);
          const bySym = (await run('perf', [...args, '--children', '--sort', 'sym'], { maxBuffer: 256 << 20 })).stdout;
          out.push({ span: r.span, samples: m ? Number(m[2]) : 0, shares: sharesOf(bySym, m ? Number(m[1]) : 0) });
        } catch {
          out.push({ span: r.span, samples: 0, shares: sharesOf('', 0) });
        }
        fs.rmSync(r.file, { force: true });
      }
      fs.rmSync(dir, { recursive: true, force: true });
      return out;
    },
  };
}

export type Profiler = ReturnType<typeof profiler>;

/** ms of PostgreSQL CPU per message in each bucket: the span's /proc figure split by the shares. */
export function msPerMessage(profile: PostgresProfile, span: CpuSpan | undefined, postgresSource: string): Record<Bucket, number> | undefined {
  const cpu = span?.cpu[postgresSource];
  if (!span?.messages || cpu === undefined || !profile.samples) return undefined;
  const total = (1000 * cpu) / span.messages;
  return Object.fromEntries(BUCKETS.map((b) => [b, round(total * profile.shares[b])])) as Record<Bucket, number>;
}
