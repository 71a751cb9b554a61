/**
 * What every fault scenario is built from: a world with `npm start` and the catalog (`inWorld`),
 * the load, fault evidence (crash markers, cuts, /metrics), and `finish`: idle, then the strict
 * books plus "the workers are up". A new scenario file imports these and adds to SCENARIOS.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { QUEUES } from '../../infra/topology';
import type { Books, History, PartakeInput, RechargeInput, UseInput } from '../support/books';
import { SKU, catalog, partakeCall, progress, recharges, send, useOrder } from './load';
import { sleep, World, type Proc, type ProxiedService } from './world';

const exec = promisify(execFile);

/** `evidence`: what shows that the fault happened (crash point reached, connections cut, failures counted). */
/** The healthy part of a partial fault next to its own baseline (no fault, same run, same load). */
export type HealthyRow = Readonly<{ part: string; baselinePerSec: number; faultPerSec: number; ratio: number; baselineP99Ms: number; faultP99Ms: number; goal: string; ok: boolean }>;
/** `healthy`: partial-failure scenarios (scenarios-partial.ts) only; `cost`: what the fault cost in seconds (cluster scenarios). */
export type Result = { recoveryMs: number; books: Books; evidence?: string; healthy?: HealthyRow[]; cost?: string };
export type Scenario = Readonly<{
  name: string;
  /** In the `--quick` subset (CI). */
  quick: boolean;
  /** Restarts a service every test on this machine shares. */
  global?: boolean;
  load: string;
  fault: string;
  run(): Promise<Result>;
}>;

/** Every world: a short outbox lease, so that a relay that died holding a claim is retried within seconds. */
export const BASE_ENV = { OUTBOX_LEASE_MS: '5000' };

export type Ctx = { w: World; svc: Proc };

/** New world + catalog + `npm start`; the body gets them; everything is stopped and removed after. */
export async function inWorld<T>(o: { proxies?: ProxiedService[]; env?: Record<string, string>; stock?: number; catalog?: ReturnType<typeof catalog> }, body: (c: Ctx) => Promise<T>): Promise<T> {
  const w = await World.create({ proxies: o.proxies, extra: { ...BASE_ENV, ...o.env } });
  try {
    // Both at once (the workers read the catalog per message, with a 1 s cache); saves a tsx start-up.
    const starting = w.start();
    starting.catch(() => undefined);
    await w.loadCatalog(o.catalog ?? catalog(o.stock ?? 100));
    const svc = await starting;
    return await body({ w, svc });
  } catch (err) {
    if (process.env.FAULTS_KEEP_LOGS) process.stderr.write(`logs kept in ${w.dir}\n`);
    throw err;
  } finally {
    await w.close(!!process.env.FAULTS_KEEP_LOGS);
  }
}

/** How long after the queues are idle a consumer may take to come back on every input queue. */
const CONSUMERS_BACK_MS = 20_000;

/** After recovery: the books, plus "the workers are up" (a live `npm start`, a consumer on every input queue). */
export async function finish(c: Ctx, faultEnd: number, inputs: Omit<History, 'events' | 'deadLetters' | 'catalog'>, extra: string[] = []): Promise<Result> {
  await c.w.waitIdle(Number(process.env.FAULTS_IDLE_TIMEOUT_MS) || 180_000);
  let recoveryMs = Date.now() - faultEnd;
  const missing = async () => {
    const consumers = await c.w.consumerCounts();
    return Object.values(QUEUES).filter((q) => !(consumers.get(q)! > 0));
  };
  let absent = await missing();
  if (absent.length) {
    // A worker that died last (a poison message's final delivery) comes back after its restart
    // backoff (at most 5 s, workers/supervisor.ts) and its start-up, which may end after the queues
    // are idle: recovery lasts until it is back, within a bound.
    await c.w.waitConsumers(c.svc, CONSUMERS_BACK_MS).catch(() => undefined);
    recoveryMs = Date.now() - faultEnd;
    absent = await missing();
  }
  const books = await c.w.check(inputs);
  books.violations.push(...extra);
  if (c.svc.done) books.violations.push(`npm start is not running (${JSON.stringify(c.svc.exit)}): ${c.w.tail(c.svc)}`);
  for (const q of absent) books.violations.push(`no consumer on ${q} after recovery`);
  return { recoveryMs, books };
}

/** Recharge load with a fault injected once `at` of it is published; `inject` resolves when the fault is over. */
export async function rechargeUnderFault(c: Ctx, inputs: RechargeInput[], at: number, inject: () => Promise<string[] | void>): Promise<Result> {
  const p = progress();
  const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 400 });
  await p.reached(Math.floor(inputs.length * at));
  const extra = (await inject()) ?? [];
  const faultEnd = Date.now();
  await loading;
  return finish(c, faultEnd, { recharges: inputs }, extra);
}

export const mixedRecharges = (n: number, limited: number) => [...recharges(n, { users: 80 }), ...recharges(limited, { users: 60, sku: SKU.limited, prefix: 'lim' })].sort(() => Math.random() - 0.5);

/**
 * A second worker, started by the test with `AQ_CRASH_AT=point`, consumes next to `npm start`; it
 * dies at the point with messages in flight, which the others must finish. Returns once it
 * consumes; `crashed()` resolves with violations (none if it died as meant).
 */
export async function armVictim(c: Ctx, worker: string, point: string, queue: string): Promise<{ crashed(): Promise<{ violations: string[]; evidence: string }> }> {
  const before = (await c.w.consumerCounts()).get(queue) ?? 0;
  const victim = c.w.spawn({ worker, extra: { AQ_CRASH_AT: point } });
  const deadline = Date.now() + 60_000;
  while (((await c.w.consumerCounts()).get(queue) ?? 0) <= before && !victim.done && Date.now() < deadline) await sleep(300);
  if (victim.done) throw new Error(`the victim ${worker} died before it consumed (${JSON.stringify(victim.exit)}), not at ${point}: ${c.w.tail(victim)}`);
  return {
    async crashed() {
      const exit = await Promise.race([victim.exited, sleep(60_000).then(() => undefined)]);
      if (!exit) {
        await c.w.kill(victim);
        return { violations: [`[fault-not-shown] ${worker} with AQ_CRASH_AT=${point} was still alive after 60 s (is the crash point in the code?)`], evidence: 'no crash' };
      }
      const marks = c.w.crashes().filter((l) => l.startsWith(`${point} `));
      if (!marks.length) return { violations: [`[fault-not-shown] ${worker} exited ${JSON.stringify(exit)} without reaching ${point}: ${c.w.tail(victim)}`], evidence: 'died elsewhere' };
      return { violations: [], evidence: `victim died at ${point} (marker: ${marks[0]!.split(' ').slice(1).join(' ')})` };
    },
  };
}

/** A stall or outage must be felt: some worker of `npm start` counted a failure in its /metrics. */
export async function failuresFelt(c: Ctx, r: Result, what: string): Promise<Result> {
  const f = await c.w.failuresSeen();
  const shown = Object.entries(f.by)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (!f.total) r.books.violations.push(`[fault-not-shown] ${what}: none of the ${f.answered} workers that served /metrics counted a retry, park, requeue, reconnect or failed publish`);
  r.evidence = [r.evidence, `${what}; /metrics of ${f.answered} workers: ${shown || 'nothing'}`].filter(Boolean).join('; ');
  return r;
}

/** A cut must cut something. */
export function cutsShown(r: Result, what: string, cuts: number[]): Result {
  if (cuts.some((n) => n === 0)) r.books.violations.push(`[fault-not-shown] ${what}: a cut found no connection to cut (${cuts.join(', ')})`);
  r.evidence = `${what}: ${cuts.join(' + ')} connections cut`;
  return r;
}

/** What partake load did: every call and every use, and how many calls should have succeeded. */
export type PartakeLoad = { partakes: PartakeInput[]; uses: UseInput[]; expectPartakes: number };

/**
 * Users with 10 chances each; every caller partakes and uses its order `rounds` times. A round that
 * got no order is recorded and the user goes on with the next one (never stops quietly).
 */
export async function partakeRounds(c: Ctx, users: string[], rounds: number, o: { timeoutMs?: number } = {}): Promise<PartakeLoad> {
  const load: PartakeLoad = { partakes: [], uses: [], expectPartakes: users.length * rounds };
  await Promise.all(
    users.map(async (u) => {
      for (let i = 0; i < rounds; i++) {
        const call = await partakeCall(c.w, u, { timeoutMs: o.timeoutMs });
        load.partakes.push(call);
        const id = call.replies.find((r) => r.code === '0000')?.orderId;
        if (id) load.uses.push(await useOrder(c.w, u, id, o.timeoutMs));
      }
    }),
  );
  return load;
}

export async function fundUsers(c: Ctx, n: number, prefix: string): Promise<{ users: string[]; funding: RechargeInput[] }> {
  const funding = recharges(n, { users: n, sku: SKU.quota10, prefix });
  await send(c.w, funding);
  await c.w.waitIdle();
  return { users: funding.map((r) => r.userId), funding };
}

async function otherTestsRunning(): Promise<string[]> {
  const { stdout } = await exec('pgrep', ['-fa', 'uvu/bin.js|bench/run.ts']).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => l.trim() && !l.includes('pgrep'));
}

/** Stops a shared service, waits, starts it again: always restarted, whatever happens. */
export async function restartGlobal(what: 'rabbitmq' | 'postgres' | 'redis', downMs: number): Promise<void> {
  const busy = await otherTestsRunning();
  if (busy.length && !process.env.FAULTS_ALLOW_GLOBAL) throw new Error(`other tests use the shared services right now (${busy[0]}); set FAULTS_ALLOW_GLOBAL=1 to restart ${what} anyway`);
  try {
    if (what === 'rabbitmq') await exec('rabbitmqctl', ['stop_app'], { timeout: 120_000 });
    else if (what === 'postgres') await exec('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'stop', '-m', 'fast'], { timeout: 120_000 });
    else await exec('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'shutdown', 'nosave'], { timeout: 30_000 }).catch(() => undefined);
    await sleep(downMs);
  } finally {
    if (what === 'rabbitmq') {
      await exec('rabbitmqctl', ['start_app'], { timeout: 120_000 });
      await exec('rabbitmqctl', ['await_startup'], { timeout: 120_000 });
    } else if (what === 'postgres') {
      await exec('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'start'], { timeout: 120_000 });
      for (let i = 0; i < 60; i++)
        if (
          await exec('pg_isready', ['-h', '127.0.0.1', '-p', '5432', '-q']).then(
            () => true,
            () => false,
          )
        )
          break;
        else await sleep(500);
    } else {
      await exec('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], { timeout: 30_000 });
      for (let i = 0; i < 60; i++)
        if (
          await exec('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping']).then(
            () => true,
            () => false,
          )
        )
          break;
        else await sleep(500);
    }
  }
}

const pgVersion = () => process.env.FAULTS_PG_VERSION ?? '15';
