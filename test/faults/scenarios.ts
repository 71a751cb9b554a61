import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { QUEUES } from '../../infra/topology';
import type { Books, History, PartakeInput, RechargeInput, UseInput } from '../support/books';
import { ACTIVITY, SKU, catalog, partakeCall, progress, recharges, send, useOrder } from './load';
import { sleep, World, type Proc, type ProxiedService } from './world';

const exec = promisify(execFile);

/** `evidence`: what shows that the fault happened (crash point reached, connections cut, failures counted). */
export type Result = { recoveryMs: number; books: Books; evidence?: string };
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
const BASE_ENV = { OUTBOX_LEASE_MS: '5000' };

type Ctx = { w: World; svc: Proc };

/** New world + catalog + `npm start`; the body gets them; everything is stopped and removed after. */
async function inWorld<T>(o: { proxies?: ProxiedService[]; env?: Record<string, string>; stock?: number }, body: (c: Ctx) => Promise<T>): Promise<T> {
  const w = await World.create({ proxies: o.proxies, extra: { ...BASE_ENV, ...o.env } });
  try {
    // Both at once (the workers read the catalog per message, with a 1 s cache); saves a tsx start-up.
    const starting = w.start();
    starting.catch(() => undefined);
    await w.loadCatalog(catalog(o.stock ?? 100));
    const svc = await starting;
    return await body({ w, svc });
  } catch (err) {
    if (process.env.FAULTS_KEEP_LOGS) process.stderr.write(`logs kept in ${w.dir}\n`);
    throw err;
  } finally {
    await w.close(!!process.env.FAULTS_KEEP_LOGS);
  }
}

/** After recovery: the books, plus "the workers are up" (a live `npm start`, a consumer on every input queue). */
async function finish(c: Ctx, faultEnd: number, inputs: Omit<History, 'events' | 'deadLetters' | 'catalog'>, extra: string[] = []): Promise<Result> {
  await c.w.waitIdle(180_000);
  const recoveryMs = Date.now() - faultEnd;
  const books = await c.w.check(inputs);
  books.violations.push(...extra);
  if (c.svc.done) books.violations.push(`npm start is not running (${JSON.stringify(c.svc.exit)}): ${c.w.tail(c.svc)}`);
  const consumers = await c.w.consumerCounts();
  for (const q of Object.values(QUEUES)) if (!(consumers.get(q)! > 0)) books.violations.push(`no consumer on ${q} after recovery`);
  return { recoveryMs, books };
}

/** Recharge load with a fault injected once `at` of it is published; `inject` resolves when the fault is over. */
async function rechargeUnderFault(c: Ctx, inputs: RechargeInput[], at: number, inject: () => Promise<string[] | void>): Promise<Result> {
  const p = progress();
  const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 400 });
  await p.reached(Math.floor(inputs.length * at));
  const extra = (await inject()) ?? [];
  const faultEnd = Date.now();
  await loading;
  return finish(c, faultEnd, { recharges: inputs }, extra);
}

const mixedRecharges = (n: number, limited: number) => [...recharges(n, { users: 80 }), ...recharges(limited, { users: 60, sku: SKU.limited, prefix: 'lim' })].sort(() => Math.random() - 0.5);

/**
 * A second worker, started by the test with `AQ_CRASH_AT=point`, consumes next to `npm start`; it
 * dies at the point with messages in flight, which the others must finish. Returns once it
 * consumes; `crashed()` resolves with violations (none if it died as meant).
 */
async function armVictim(c: Ctx, worker: string, point: string, queue: string): Promise<{ crashed(): Promise<{ violations: string[]; evidence: string }> }> {
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
async function failuresFelt(c: Ctx, r: Result, what: string): Promise<Result> {
  const f = await c.w.failuresSeen();
  const shown = Object.entries(f.by).map(([k, v]) => `${k} ${v}`).join(', ');
  if (!f.total) r.books.violations.push(`[fault-not-shown] ${what}: no worker counted a retry, park, requeue, reconnect or failed publish in its /metrics`);
  r.evidence = [r.evidence, `${what}; /metrics: ${shown || 'nothing'}`].filter(Boolean).join('; ');
  return r;
}

/** A cut must cut something. */
function cutsShown(r: Result, what: string, cuts: number[]): Result {
  if (cuts.some((n) => n === 0)) r.books.violations.push(`[fault-not-shown] ${what}: a cut found no connection to cut (${cuts.join(', ')})`);
  r.evidence = `${what}: ${cuts.join(' + ')} connections cut`;
  return r;
}

/** Recharge load with a crashing worker at `point` next to `npm start`. */
const crashScenario = (name: string, worker: string, point: string, quick: boolean): Scenario => ({
  name,
  quick,
  load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
  fault: `SIGKILL of an extra ${worker} worker at AQ_CRASH_AT=${point}`,
  run: () =>
    inWorld({}, async (c) => {
      const inputs = mixedRecharges(900, 300);
      const victim = await armVictim(c, worker, point, QUEUES.recharge);
      const loading = send(c.w, inputs, { ratePerSec: 400 });
      const crash = await victim.crashed();
      const faultEnd = Date.now();
      await loading;
      return { ...(await finish(c, faultEnd, { recharges: inputs }, crash.violations)), evidence: crash.evidence };
    }),
});

/** What partake load did: every call and every use, and how many calls should have succeeded. */
export type PartakeLoad = { partakes: PartakeInput[]; uses: UseInput[]; expectPartakes: number };

/**
 * Users with 10 chances each; every caller partakes and uses its order `rounds` times. A round that
 * got no order is recorded and the user goes on with the next one (never stops quietly).
 */
async function partakeRounds(c: Ctx, users: string[], rounds: number, o: { timeoutMs?: number } = {}): Promise<PartakeLoad> {
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

async function fundUsers(c: Ctx, n: number, prefix: string): Promise<{ users: string[]; funding: RechargeInput[] }> {
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
async function restartGlobal(what: 'rabbitmq' | 'postgres' | 'redis', downMs: number): Promise<void> {
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
      for (let i = 0; i < 60; i++) if (await exec('pg_isready', ['-h', '127.0.0.1', '-p', '5432', '-q']).then(() => true, () => false)) break;
      else await sleep(500);
    } else {
      await exec('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], { timeout: 30_000 });
      for (let i = 0; i < 60; i++) if (await exec('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping']).then(() => true, () => false)) break;
      else await sleep(500);
    }
  }
}

const pgVersion = () => process.env.FAULTS_PG_VERSION ?? '15';

export const SCENARIOS: Scenario[] = [
  crashScenario('crash-recharge-before-commit', 'recharge', 'recharge-before-commit', true),
  crashScenario('crash-recharge-after-commit', 'recharge', 'recharge-after-commit', true),
  crashScenario('crash-relay-after-confirm', 'recharge', 'relay-after-confirm', true),
  {
    name: 'crash-partake-after-commit',
    quick: true,
    load: '60 users × 3 partake+use rounds',
    fault: 'SIGKILL of an extra partake worker at AQ_CRASH_AT=partake-after-commit',
    run: () =>
      inWorld({}, async (c) => {
        const { users, funding } = await fundUsers(c, 60, 'pk');
        const victim = await armVictim(c, 'partake', 'partake-after-commit', QUEUES.partake);
        const load = await partakeRounds(c, users, 3, { timeoutMs: 3_000 });
        const crash = await victim.crashed();
        return { ...(await finish(c, Date.now(), { recharges: funding, ...load }, crash.violations)), evidence: crash.evidence };
      }),
  },
  {
    name: 'kill-tree',
    quick: true,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'SIGKILL of the whole npm start tree at 30 %, restart after 1 s',
    run: () =>
      inWorld({}, async (c) => {
        let killed = '';
        const r = await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
          const before = c.svc;
          await c.w.kill(before);
          killed = `npm start tree ended by ${before.exit?.signal ?? before.exit?.code ?? 'nothing'}`;
          if (before.exit?.signal !== 'SIGKILL') return [`[fault-not-shown] ${killed}`];
          await sleep(1_000);
          c.svc = await c.w.start();
        });
        return { ...r, evidence: killed };
      }),
  },
  {
    name: 'db-cut',
    quick: false,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'every PostgreSQL connection cut (TCP proxy) at 25 %, 50 %, 75 %',
    run: () =>
      inWorld({ proxies: ['pg'] }, async (c) => {
        const inputs = mixedRecharges(900, 300);
        const p = progress();
        const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 400 });
        const cuts: number[] = [];
        for (const at of [0.25, 0.5, 0.75]) {
          await p.reached(Math.floor(inputs.length * at));
          cuts.push(c.w.proxies.pg!.cut());
        }
        const faultEnd = Date.now();
        await loading;
        return cutsShown(await finish(c, faultEnd, { recharges: inputs }), 'PostgreSQL', cuts);
      }),
  },
  {
    name: 'db-stall',
    quick: false,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'PostgreSQL stalled 8 s (TCP proxy holds every byte), then restored',
    run: () =>
      inWorld({ proxies: ['pg'] }, async (c) =>
        failuresFelt(c, await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
          c.w.proxies.pg!.stall();
          await sleep(8_000);
          c.w.proxies.pg!.restore();
        }), 'PostgreSQL stalled 8 s'),
      ),
  },
  {
    name: 'amqp-cut',
    quick: false,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: "every worker's RabbitMQ connection cut (TCP proxy) at 30 % and 60 %",
    run: () =>
      inWorld({ proxies: ['amqp'] }, async (c) => {
        const inputs = mixedRecharges(900, 300);
        const p = progress();
        const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 400 });
        const cuts: number[] = [];
        for (const at of [0.3, 0.6]) {
          await p.reached(Math.floor(inputs.length * at));
          cuts.push(c.w.proxies.amqp!.cut());
        }
        const faultEnd = Date.now();
        await loading;
        return cutsShown(await finish(c, faultEnd, { recharges: inputs }), 'RabbitMQ', cuts);
      }),
  },
  {
    name: 'amqp-stall',
    quick: false,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: "workers' RabbitMQ connections stalled 8 s (TCP proxy), then restored",
    run: () =>
      inWorld({ proxies: ['amqp'] }, async (c) =>
        failuresFelt(c, await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
          c.w.proxies.amqp!.stall();
          await sleep(8_000);
          c.w.proxies.amqp!.restore();
        }), 'RabbitMQ stalled 8 s'),
      ),
  },
  {
    name: 'redis-down',
    quick: false,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'Redis unreachable 5 s (TCP proxy cuts and refuses), then back with its data',
    run: () =>
      inWorld({ proxies: ['redis'] }, async (c) => {
        let cut = 0;
        const r = await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
          cut = c.w.proxies.redis!.down();
          await sleep(5_000);
          c.w.proxies.redis!.restore();
        });
        return failuresFelt(c, cutsShown(r, 'Redis', [cut]), 'Redis down 5 s');
      }),
  },
  {
    name: 'redis-flush',
    quick: true,
    load: '1200 recharges (700 unlimited, 500 vs stock 100) at 400/s',
    fault: "FLUSHDB of the world's Redis db at 30 % and 60 % (stock counters and reservations gone)",
    run: () =>
      inWorld({}, async (c) => {
        const inputs = mixedRecharges(700, 500);
        const p = progress();
        const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 400 });
        const redis = new Redis(c.w.config.redisUrl);
        redis.on('error', () => undefined);
        try {
          for (const at of [0.3, 0.6]) {
            await p.reached(Math.floor(inputs.length * at));
            await redis.flushdb();
          }
        } finally {
          redis.disconnect();
        }
        const faultEnd = Date.now();
        await loading;
        const r = await finish(c, faultEnd, { recharges: inputs });
        const rebuilt = c.w.grepLogs(/stock counter rebuilt from the ledger/).length;
        if (!rebuilt) r.books.violations.push('[fault-not-shown] no worker rebuilt a stock counter after the flushes');
        return { ...r, evidence: `${rebuilt} counter rebuild(s) logged` };
      }),
  },
  {
    name: 'duplicates',
    quick: true,
    load: '600 recharges (400 unlimited, 200 vs stock 100), each published 3× at once, then all again',
    fault: 'the same message delivered 3 times concurrently, and once more after idle',
    run: () =>
      inWorld({}, async (c) => {
        const inputs = mixedRecharges(400, 200);
        await send(c.w, inputs, { copies: 3, concurrency: 30 });
        await c.w.waitIdle();
        await send(c.w, inputs, { concurrency: 30 });
        return finish(c, Date.now(), { recharges: inputs });
      }),
  },
  {
    name: 'poison',
    quick: true,
    load: '600 recharges at 200/s, DELIVERY_LIMIT=3, one poison message in the middle',
    fault: 'a recharge whose handler kills its worker on every delivery (AQ_CRASH_AT=recharge-message:<outBusinessNo>)',
    run: async () => {
      const poisonNo = `poison-${Math.random().toString(36).slice(2, 8)}`;
      return inWorld({ env: { DELIVERY_LIMIT: process.env.FAULTS_POISON_DELIVERY_LIMIT ?? '3', AQ_CRASH_AT: `recharge-message:${poisonNo}` } }, async (c) => {
        const inputs = recharges(600, { users: 60 });
        const p = progress();
        const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 200 });
        await p.reached(300);
        const messageId = await c.w.caller.publish(QUEUES.recharge, { userId: 'poison-user', sku: SKU.unlimited, outBusinessNo: poisonNo });
        const faultEnd = Date.now();
        await loading;
        const r = await finish(c, faultEnd, { recharges: inputs, poison: [{ messageId }] });
        const marks = c.w.crashes().filter((l) => l.startsWith(`recharge-message:${poisonNo} `)).length;
        if (!marks) r.books.violations.push('[fault-not-shown] no worker died at the poison (is the crash point in the code?)');
        return { ...r, evidence: `a worker died at the poison ${marks} time(s)` };
      });
    },
  },
  {
    name: 'partake-1000-one-user',
    quick: true,
    load: '1000 concurrent partakes by one user with 10 chances',
    fault: 'concurrency on one account (no injected failure)',
    run: () =>
      inWorld({}, async (c) => {
        const { users, funding } = await fundUsers(c, 1, 'one');
        const t0 = Date.now();
        const calls = await Promise.all(Array.from({ length: 1000 }, () => partakeCall(c.w, users[0]!, { timeoutMs: 60_000 })));
        return finish(c, t0, { recharges: funding, partakes: calls, expectPartakes: 1000 });
      }),
  },
  {
    name: 'recharge-10k-stock-100',
    quick: true,
    load: '10,000 recharges by 1000 users against stock 100',
    fault: 'contention on one stock counter (no injected failure)',
    run: () =>
      inWorld({ stock: 100 }, async (c) => {
        const inputs = recharges(10_000, { users: 1000, sku: SKU.limited, prefix: 'ten' });
        const t0 = Date.now();
        await send(c.w, inputs, { concurrency: 50 });
        const r = await finish(c, t0, { recharges: inputs });
        if (r.books.effects < 10_000) r.books.violations.push(`only ${r.books.effects} effects for 10,000 recharges`);
        return r;
      }),
  },
  {
    name: 'partake-timeout-retry',
    quick: true,
    load: '40 users × 5 rounds of partake (caller timeout 400 ms, retry) + use',
    fault: 'PostgreSQL stalled 2 s three times (TCP proxy) so callers time out and retry',
    run: () =>
      inWorld({ proxies: ['pg'] }, async (c) => {
        const { users, funding } = await fundUsers(c, 40, 'to');
        // The first stall starts with the calls, so that callers certainly time out and retry.
        c.w.proxies.pg!.stall();
        const calls = partakeRounds(c, users, 5, { timeoutMs: 400 });
        for (let i = 0; i < 3; i++) {
          if (i) c.w.proxies.pg!.stall();
          await sleep(2_000);
          c.w.proxies.pg!.restore();
          await sleep(700);
        }
        const faultEnd = Date.now();
        const done = await calls;
        const r = await finish(c, faultEnd, { recharges: funding, ...done });
        const retried = done.partakes.filter((x) => x.replies.length > 1).length;
        if (!retried) r.books.violations.push('[fault-not-shown] no caller timed out and retried');
        return failuresFelt(c, { ...r, evidence: `${retried} calls retried after a timeout` }, 'PostgreSQL stalled 3 × 2 s');
      }),
  },
  {
    name: 'rabbitmq-restart',
    quick: false,
    global: true,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'rabbitmqctl stop_app, 5 s, start_app at 30 %',
    run: () => inWorld({}, async (c) => rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, () => restartGlobal('rabbitmq', 5_000))),
  },
  {
    name: 'postgres-restart',
    quick: false,
    global: true,
    load: '1200 recharges (900 unlimited, 300 vs stock 100) at 400/s',
    fault: 'PostgreSQL stopped (fast), 3 s, started at 30 %',
    run: () => inWorld({}, async (c) => rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, () => restartGlobal('postgres', 3_000))),
  },
  {
    name: 'redis-restart',
    quick: false,
    global: true,
    load: '1200 recharges (700 unlimited, 500 vs stock 100) at 400/s',
    fault: 'Redis shut down (nosave), 3 s, started empty at 30 %',
    run: () => inWorld({}, async (c) => rechargeUnderFault(c, mixedRecharges(700, 500), 0.3, () => restartGlobal('redis', 3_000))),
  },
];

export { ACTIVITY };
