import { ConfigError, loadConfig, type Config } from '../infra/config';
import { openContext, type Start } from '../infra/context';
import { serveOps, type OpsServer } from '../infra/health';
import { checkLayout, layoutOf } from '../infra/layout';
import { startTelemetry } from '../infra/telemetry';

export { openContext, type Context, type Start } from '../infra/context';

export const WORKERS = ['recharge', 'partake', 'stock-zero', 'task-compensation'] as const;
export type WorkerName = (typeof WORKERS)[number];

export async function loadWorker(name: WorkerName): Promise<Start> {
  switch (name) {
    case 'recharge':
      return (await import('./recharge/main')).start;
    case 'partake':
      return (await import('./partake/main')).start;
    case 'stock-zero':
      return (await import('./stock-zero/main')).start;
    case 'task-compensation':
      return (await import('./task-compensation/main')).start;
    default: {
      const _exhaustive: never = name;
      throw new Error(`unknown worker ${String(_exhaustive)}`);
    }
  }
}

/** Process entry of one worker: start, then on SIGTERM / SIGINT drain in-flight messages and exit 0. */
export async function runWorker(name: WorkerName): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.problems.map((p) => `configuration error: ${p}\n`).join(''));
      process.exit(2);
    }
    throw err;
  }
  const telemetry = startTelemetry(config, name);
  const ctx = await openContext(name, config);
  // Exit 2 (a setting to fix, not a crash to retry): the supervisor stops instead of restarting.
  await checkLayout(ctx.dbs.global, layoutOf(config)).catch(async (err) => {
    if (!(err instanceof ConfigError)) return ctx.log.warn({ err }, 'shard layout not checked: the global database did not answer');
    process.stderr.write(`configuration error: ${err.message}\n`);
    await ctx.close(0);
    process.exit(2);
  });
  const stopJobs = await (await loadWorker(name))(ctx);
  // Several workers run side by side under `npm start`: each takes METRICS_PORT + its index in WORKERS.
  let ops: OpsServer | undefined;
  if (config.metricsPort) {
    ops = await serveOps(ctx, config.metricsPort + WORKERS.indexOf(name)).catch((err) => {
      ctx.log.error({ err, port: config.metricsPort + WORKERS.indexOf(name) }, 'cannot serve /healthz and /metrics; running without them');
      return undefined;
    });
  }
  ctx.log.info({ queues: 'consuming' }, 'worker started');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    ctx.log.info({ signal }, 'worker stopping');
    await stopJobs?.();
    await ops?.close();
    await ctx.close(8_000);
    await telemetry.shutdown().catch((err: unknown) => ctx.log.warn({ err }, 'spans not exported at shutdown'));
    ctx.log.info('worker stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
