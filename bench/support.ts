import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Latency summary in milliseconds. */
export type Latency = Readonly<{ n: number; mean: number; p50: number; p95: number; p99: number; max: number }>;

export function summarize(samples: number[]): Latency {
  if (samples.length === 0) return { n: 0, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, mean: sum / s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1]! };
}

export const now = () => performance.now();

/** Replaces what lies between the marker lines `begin` and `end` of `file` (false if they are missing). */
export function writeBetween(file: string, begin: string, end: string, body: string): boolean {
  const text = fs.readFileSync(file, 'utf8');
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b < 0 || e < b) return false;
  fs.writeFileSync(file, `${text.slice(0, b + begin.length)}\n${body}\n${text.slice(e)}`);
  return true;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rounds for display and JSON: 3 significant digits below 100, whole numbers above. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  return Number(v.toPrecision(3));
}

/**
 * One updating line on stderr when it is a TTY (count, rate, elapsed), a line every few seconds
 * otherwise. `done()` leaves the final figures on their own line.
 */
export function progress(label: string, total?: number): { tick(n?: number): void; set(n: number): void; note(s: string): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  const t0 = now();
  let count = 0;
  let extra = '';
  let lastLine = 0;
  const line = () => {
    const el = (now() - t0) / 1000;
    const rate = el > 0 ? count / el : 0;
    const of = total ? `/${total}` : '';
    return `${label}: ${count}${of}  ${rate.toFixed(0)}/s  ${el.toFixed(1)}s${extra ? '  ' + extra : ''}`;
  };
  const timer = setInterval(
    () => {
      if (tty) process.stderr.write(`\r\x1b[K${line()}`);
      else if (now() - lastLine >= 5_000) {
        lastLine = now();
        process.stderr.write(`${line()}\n`);
      }
    },
    tty ? 200 : 1_000,
  );
  timer.unref();
  return {
    tick: (n = 1) => void (count += n),
    set: (n) => void (count = n),
    note: (s) => void (extra = s),
    done() {
      clearInterval(timer);
      process.stderr.write(tty ? `\r\x1b[K${line()}\n` : `${line()}\n`);
    },
  };
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** Process ids in the process group `pgid` (and their descendants) with their command lines. */
export function processTree(pgid: number): Array<{ pid: number; cmd: string }> {
  const procs: Array<{ pid: number; ppid: number; pgid: number }> = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue;
      procs.push({ pid: Number(name), ppid: Number(rest[1]), pgid: Number(rest[2]) });
    } catch {
      /* gone */
    }
  }
  const set = new Set<number>();
  for (const p of procs) if (p.pgid === pgid) set.add(p.pid);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (!set.has(p.pid) && set.has(p.ppid)) set.add(p.pid), (grew = true);
  }
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const pid of set) {
    try {
      out.push({ pid, cmd: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command; clock ticks of 1/100 s
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples the resident memory and CPU of the worker processes (`workers/run.ts NAME` or
 * `dist/run.mjs NAME`) of a process group. Peaks are
 * kept per worker name over the whole run and per phase (`phase(name)` starts a new one).
 */
export function rssSampler(pgid: number, everyMs = 500) {
  const overall = new Map<string, number>();
  const phases = new Map<string, Map<string, number>>();
  const cpuByPhase = new Map<string, Map<string, number>>();
  let current: Map<string, number> | undefined;
  let currentName = '';
  // CPU seconds per pid at the start of the current phase, and the latest reading.
  let cpuStart = new Map<number, { name: string; s: number }>();
  let driverStart = process.cpuUsage();
  const cpuNow = new Map<number, { name: string; s: number }>();
  const closeCpu = () => {
    if (!currentName) return;
    const m = new Map<string, number>();
    for (const [pid, v] of cpuNow) m.set(v.name, (m.get(v.name) ?? 0) + v.s - (cpuStart.get(pid)?.s ?? 0));
    // The bench's own process (callers, event tap, DB polling) competes for the same CPUs.
    const d = process.cpuUsage(driverStart);
    m.set('bench driver', (d.user + d.system) / 1e6);
    cpuByPhase.set(currentName, m);
  };
  const sample = () => {
    for (const p of processTree(pgid)) {
      // From source (`workers/run.ts NAME`) or built (`dist/run.mjs NAME`, what `npm start` runs).
      const m = /(?:workers\/run\.ts|\/run\.mjs)\s+(\S+)/.exec(p.cmd) ?? (/(?:workers\/supervisor\.ts|\/supervisor\.mjs)/.test(p.cmd) ? [undefined, 'supervisor'] : null);
      if (!m) continue;
      const name = m[1]!;
      cpuNow.set(p.pid, { name, s: cpuSeconds(p.pid) });
      const mb = Math.max(statusKb(p.pid, 'VmHWM'), statusKb(p.pid, 'VmRSS')) / 1024;
      overall.set(name, Math.max(overall.get(name) ?? 0, mb));
      if (current) current.set(name, Math.max(current.get(name) ?? 0, statusKb(p.pid, 'VmRSS') / 1024));
    }
  };
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    sample,
    phase(name: string) {
      sample();
      closeCpu();
      cpuStart = new Map(cpuNow);
      driverStart = process.cpuUsage();
      currentName = name;
      current = new Map();
      phases.set(name, current);
    },
    stop() {
      sample();
      closeCpu();
      currentName = '';
      clearInterval(timer);
    },
    /** CPU seconds used by each worker during each phase (a restarted worker's first life is lost). */
    phaseCpu: () => Object.fromEntries([...cpuByPhase].map(([p, m]) => [p, Object.fromEntries([...m].map(([k, v]) => [k, round(v)]))])),
    /** Peak RSS (MB) of each worker over the run (VmHWM: the kernel's own high-water mark). */
    peaks: () => Object.fromEntries([...overall].map(([k, v]) => [k, round(v)])),
    phasePeaks: () => Object.fromEntries([...phases].map(([p, m]) => [p, Object.fromEntries([...m].map(([k, v]) => [k, round(v)]))])),
  };
}

/** Runs `body` with a deadline: resolves with its value, or with `onTimeout()` after `ms`. */
export async function bounded<T>(ms: number, body: Promise<T>, onTimeout: () => T): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve, reject) => {
    t = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([body, timeout]);
  } finally {
    clearTimeout(t);
  }
}
