import { Redis } from 'ioredis';
import { QUEUES } from '../../infra/topology';
import { armVictim, cutsShown, failuresFelt, finish, fundUsers, inWorld, mixedRecharges, partakeRounds, rechargeUnderFault, restartGlobal, type Scenario } from './harness';
import { SKU, partakeCall, progress, recharges, send } from './load';
import { MORE_SCENARIOS } from './scenarios-more';
import { PARTIAL_SCENARIOS } from './scenarios-partial';
import { sleep } from './world';

export type { HealthyRow, Result, Scenario } from './harness';

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

/** Partake+use rounds with an extra partake worker that dies at `point`; it is armed once it consumes `queue`. */
const partakeCrashScenario = (name: string, point: string, queue: string, prefix: string, why = ''): Scenario => ({
  name,
  quick: true,
  load: '60 users × 3 partake+use rounds',
  fault: `SIGKILL of an extra partake worker at AQ_CRASH_AT=${point}${why}`,
  run: () =>
    inWorld({}, async (c) => {
      const { users, funding } = await fundUsers(c, 60, prefix);
      const victim = await armVictim(c, 'partake', point, queue);
      const load = await partakeRounds(c, users, 3, { timeoutMs: 3_000 });
      const crash = await victim.crashed();
      return { ...(await finish(c, Date.now(), { recharges: funding, ...load }, crash.violations)), evidence: crash.evidence };
    }),
});

export const SCENARIOS: Scenario[] = [
  crashScenario('crash-recharge-before-commit', 'recharge', 'recharge-before-commit', true),
  crashScenario('crash-recharge-after-commit', 'recharge', 'recharge-after-commit', true),
  crashScenario('crash-relay-after-confirm', 'recharge', 'relay-after-confirm', true),
  partakeCrashScenario('crash-partake-after-commit', 'partake-after-commit', QUEUES.partake, 'pk'),
  partakeCrashScenario('crash-use-after-commit', 'use-after-commit', QUEUES.raffleOrderUsed, 'uk', ' (a use committed, its reply not sent: the broker delivers it again)'),
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
        failuresFelt(
          c,
          await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
            c.w.proxies.pg!.stall();
            await sleep(8_000);
            c.w.proxies.pg!.restore();
          }),
          'PostgreSQL stalled 8 s',
        ),
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
        failuresFelt(
          c,
          await rechargeUnderFault(c, mixedRecharges(900, 300), 0.3, async () => {
            c.w.proxies.amqp!.stall();
            await sleep(8_000);
            c.w.proxies.amqp!.restore();
          }),
          'RabbitMQ stalled 8 s',
        ),
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
    // Stock 400 of 500 limited: both flushes come before the sell-out, while takes are in flight.
    load: '1200 recharges (700 unlimited, 500 vs stock 400) at 400/s',
    fault: "FLUSHDB of the world's Redis db at 30 % and 60 % (stock counters and reservations gone)",
    run: () =>
      inWorld({ stock: 400 }, async (c) => {
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
        // A 2 s stall is within every worker timeout: the callers' timeouts are the evidence, not /metrics.
        if (!retried) r.books.violations.push('[fault-not-shown] no caller timed out and retried');
        return { ...r, evidence: `${retried} calls retried after a timeout` };
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
  ...MORE_SCENARIOS,
  ...PARTIAL_SCENARIOS,
];
