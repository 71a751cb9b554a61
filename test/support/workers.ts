import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Config } from '../../infra/config';
import { openContext, loadWorker, type Context, type WorkerName } from '../../workers/runtime';
import { waitFor } from './client';

const execFileP = promisify(execFile);

export type Running = Readonly<{ ctx: Context; stop(): Promise<void> }>;

/** Runs one worker in this process (fast, debuggable); `stop()` drains and closes like SIGTERM would. */
export async function startWorker(name: WorkerName, config: Config): Promise<Running> {
  const ctx = await openContext(name, config, 5);
  const stopJobs = await (await loadWorker(name))(ctx);
  return {
    ctx,
    async stop() {
      await stopJobs?.();
      await ctx.close(5_000);
    },
  };
}

export type Service = Readonly<{ child: ChildProcess; output(): string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }>;

/** `npm start` (or any npm script) as a child process in its own process group. */
export function spawnNpm(args: string[], env: Record<string, string>): Service {
  const child = spawn('npm', args, { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

/** Waits until the broker lists a consumer on every queue. */
export async function waitConsumers(checkQueue: (q: string) => Promise<{ consumerCount: number }>, queues: readonly string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      for (const q of queues) if ((await checkQueue(q).catch(() => ({ consumerCount: 0 }))).consumerCount < 1) return false;
      return true;
    },
    timeoutMs,
    `consumers on ${queues.join(', ')}`,
  );
}

/** `npm run --silent SCRIPT -- ARGS` in a test world; its stdout, or an error carrying stdout and stderr. */
export async function npmScript(script: string, args: string[], env: Record<string, string>): Promise<string> {
  try {
    return (await execFileP('npm', ['run', '--silent', script, '--', ...args], { env: { ...process.env, ...env } })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}
