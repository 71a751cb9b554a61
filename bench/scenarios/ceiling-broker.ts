import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BENCH_EVENTS, ECHO_QUEUE, SINK_QUEUE, WORK_QUEUE } from '../broker-echo';
import { connectDriver, runCallers } from '../driver';
import { bounded, log, now, progress, round, summarize, type Latency } from '../support';

/**
 * The broker ceiling: the same messaging as the pipeline with no database behind it. The echo
 * worker (bench/broker-echo.ts) runs in its own process, as a worker would.
 *  - request/reply: C callers each loop { rpc to bench.echo; confirmed publish to bench.sink }, the
 *    partake loop's messages (partake request/reply + raffle-order.used);
 *  - publish/consume: N confirmed publishes to bench.work, each turned into an event on
 *    bench.events by the echo worker, counted at an exclusive bound queue (the recharge shape).
 */
export type RpcPoint = Readonly<{
  concurrency: number;
  /** Round trips completed (each with its sink publish), the warm-up second included (for CPU per message). */
  requests: number;
  throughput: number;
  latency: Latency;
  errors: number;
}>;
export type PubSub = Readonly<{ n: number; arrived: number; seconds: number; perSecond: number }>;

export async function startEcho(amqpUrl: string, env: Record<string, string>): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const entry = fileURLToPath(new URL('../broker-echo.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env: { ...process.env, ...env, AMQP_URL: amqpUrl }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  await bounded(
    30_000,
    new Promise<boolean>((resolve, reject) => {
      child.stdout!.on('data', (d) => String(d).includes('ready') && resolve(true));
      child.on('exit', (code) => reject(new Error(`echo worker exited ${code}: ${out}`)));
    }),
    () => {
      throw new Error(`echo worker not ready within 30 s: ${out}`);
    },
  );
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await bounded(5_000, exited, () => (child.pid && process.kill(-child.pid, 'SIGKILL'), undefined));
    },
  };
}

/** `onLevel(c)` as each level starts; the function it returns, if any, gets the level's point (CPU spans). */
export async function brokerRpcCeiling(amqpUrl: string, concurrencies: readonly number[], seconds: number, onLevel?: (c: number) => ((p: RpcPoint) => void) | void): Promise<RpcPoint[]> {
  const d = await connectDriver(amqpUrl);
  const points: RpcPoint[] = [];
  try {
    for (const c of concurrencies) {
      const ended = onLevel?.(c);
      const bar = progress(`ceiling broker rpc C=${c}`);
      const lat: number[] = [];
      let errors = 0;
      const t0 = now();
      const warm = t0 + Math.min(1_000, seconds * 200);
      const end = t0 + seconds * 1000;
      let counted = 0;
      let requests = 0;
      await runCallers(
        c,
        () => now() >= end || errors > 100,
        async () => {
          const s = now();
          try {
            const r = await d.rpc(ECHO_QUEUE, { userId: 'echo', activityId: 1 }, 10_000);
            if (s >= warm) lat.push(r.at - s), counted++;
            await d.publish('', SINK_QUEUE, { userId: 'echo', orderId: '1' });
            requests++;
            bar.tick();
          } catch {
            errors++;
          }
        },
      );
      bar.done();
      const point: RpcPoint = { concurrency: c, requests, throughput: round(counted / ((end - warm) / 1000)), latency: summarize(lat), errors };
      ended?.(point);
      points.push(point);
    }
  } finally {
    await d.close();
  }
  return points;
}

export async function brokerPubSubCeiling(amqpUrl: string, n: number, timeoutS: number): Promise<PubSub> {
  const d = await connectDriver(amqpUrl);
  try {
    let arrived = 0;
    let last = 0;
    let resolveAll: () => void = () => undefined;
    const all = new Promise<void>((r) => (resolveAll = r));
    await d.listen(BENCH_EVENTS, ['work.done'], (_m, at) => {
      arrived++;
      last = at;
      if (arrived >= n) resolveAll();
    });
    const bar = progress('ceiling broker publish/consume', n);
    const t0 = now();
    const ticker = setInterval(() => bar.set(arrived), 200);
    let next = 0;
    const window = 256;
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (next < n) {
          const i = next++;
          await d.publish('', WORK_QUEUE, { userId: `w${i}`, sku: 1, outBusinessNo: String(i) });
        }
      }),
    );
    await bounded(timeoutS * 1000, all, () => log(`publish/consume: ${arrived}/${n} arrived within ${timeoutS} s`));
    clearInterval(ticker);
    bar.set(arrived);
    bar.done();
    const seconds = ((last || now()) - t0) / 1000;
    return { n, arrived, seconds: round(seconds), perSecond: round(arrived / seconds) };
  } finally {
    await d.close();
  }
}
