import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, workerEnv } from '../infra/config';
import { log as rootLog } from '../infra/log';
import { mutated } from '../infra/mutation';
import { WORKERS, type WorkerName } from './runtime';

/**
 * `npm start`: every worker in its own process, restarted with backoff when it dies. SIGTERM or
 * SIGINT is passed on; each worker drains its in-flight messages; we exit 0 once all are gone
 * (those still running after STOP_GRACE_MS are killed).
 */
const STOP_GRACE_MS = 9_000;
const log = rootLog.child({ worker: 'supervisor' });

try {
  loadConfig(); // one clear line about a bad setting, instead of four crashing children
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(err.problems.map((p) => `configuration error: ${p}\n`).join(''));
    process.exit(2);
  }
  throw err;
}

type Slot = { name: WorkerName; child?: ChildProcess; restarts: number; startedAt: number; timer?: NodeJS.Timeout };
// Built (`dist/supervisor.mjs`, what `npm start` runs): children run the built `run.mjs` with plain
// node, which saves each process the TypeScript loader (~50 MB). From source: tsx, as in tests.
const built = import.meta.url.endsWith('.mjs');
const entry = fileURLToPath(new URL(built ? './run.mjs' : './run.ts', import.meta.url));
// A smaller young generation (8 MB semi-spaces instead of 16) keeps a busy worker near 130 MB RSS
// instead of 155 MB, at no measurable cost in throughput (docs/BENCHMARKS.md, hot path steps).
const nodeArgs = built ? ['--max-semi-space-size=8', entry] : ['--import', 'tsx', entry];
const slots: Slot[] = WORKERS.map((name) => ({ name, restarts: 0, startedAt: 0 }));
let stopping = false;

/** `afterCrash`: the worker starts on probation (one message at a time until a window is acked). */
function launch(slot: Slot, afterCrash = false): void {
  slot.startedAt = Date.now();
  const env = workerEnv(afterCrash);
  const child = spawn(process.execPath, [...nodeArgs, slot.name], { stdio: ['ignore', 'inherit', 'inherit'], env });
  slot.child = child;
  log.info({ name: slot.name, pid: child.pid }, 'worker launched');
  child.on('error', (err) => log.error({ err, name: slot.name }, 'worker could not be spawned'));
  child.on('exit', (code, signal) => {
    slot.child = undefined;
    if (stopping) return;
    if (code === 2) {
      // A wrong setting (e.g. another shard layout than the data's): restarting cannot help.
      log.fatal({ name: slot.name }, 'worker refused its configuration; stopping all workers');
      void stop('SIGTERM', 2);
      return;
    }
    if (mutated('no-restart')) return void log.error({ name: slot.name, code, signal }, 'worker exited, not restarted (AQ_MUTATION)');
    // A worker that ran for a minute earns a fresh backoff.
    if (Date.now() - slot.startedAt > 60_000) slot.restarts = 0;
    // Short: a message that crashes its worker blocks that worker's queues until it has been
    // delivered DELIVERY_LIMIT times, and each of those deliveries waits for a restart.
    const delay = Math.min(250 * 2 ** slot.restarts, 5_000);
    slot.restarts++;
    log.error({ name: slot.name, code, signal, restartInMs: delay }, 'worker exited, restarting');
    slot.timer = setTimeout(() => launch(slot, true), delay);
  });
}

async function stop(signal: NodeJS.Signals, exitCode = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping workers');
  const running = slots.filter((s) => s.child);
  for (const s of slots) clearTimeout(s.timer);
  const exits = running.map((s) => new Promise<void>((resolve) => s.child!.once('exit', () => resolve())));
  for (const s of running) s.child!.kill('SIGTERM');
  const timeout = setTimeout(() => {
    for (const s of slots) if (s.child) log.warn({ name: s.name }, 'worker did not stop in time, killing'), s.child.kill('SIGKILL');
  }, STOP_GRACE_MS);
  await Promise.all(exits);
  clearTimeout(timeout);
  log.info('all workers stopped');
  process.exit(exitCode);
}

process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
for (const slot of slots) launch(slot);
