import fs from 'node:fs';
import { QUEUES } from '../../infra/topology';
import type { CancelInput } from '../support/books';
import { finish, fundUsers, inWorld, mixedRecharges, partakeRounds, type Ctx, type PartakeLoad, type Result, type Scenario } from './harness';
import { ACTIVITY, SKU, cancelOrder, catalog, partakeCall, progress, queryAccount, recharges, send, useOrder } from './load';
import { sleep } from './world';

/** Scenarios of issue 11: a graceful stop under load, poison on the request/reply path, expiry and cancel racing uses. */

/**
 * SIGTERM to `npm start` once 200 recharges are out, right after a burst of 150 more published at
 * once, with partakes running too; then start it again. "In flight" is what the workers counted
 * when they stopped consuming (their `draining deliveries in flight` log lines), not a broker
 * sample taken a second earlier.
 */
async function sigtermInFlight(c: Ctx): Promise<Result> {
  const { users, funding } = await fundUsers(c, 50, 'st');
  const inputs = mixedRecharges(350, 150);
  const burst = recharges(150, { users: 50, prefix: 'burst' });
  const p = progress();
  const loading = send(c.w, inputs, { onProgress: p.tick, ratePerSec: 250 });
  const partaking = partakeRounds(c, users, 4, { timeoutMs: 3_000 });
  await p.reached(200);
  await send(c.w, burst, { concurrency: burst.length });
  const before = c.svc;
  const t0 = Date.now();
  await c.w.stop(before, 30_000);
  const exit = before.exit;
  const inFlight = drained(before.log);
  const stopped = `npm start stopped by SIGTERM with ${inFlight} deliveries in flight (workers' count): exit ${exit?.code ?? exit?.signal} after ${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const violations: string[] = [];
  if (!inFlight) violations.push('[fault-not-shown] nothing was in flight when SIGTERM came');
  if (exit?.code !== 0) violations.push(`[graceful-stop] ${stopped}: ${c.w.tail(before)}`);
  c.svc = await c.w.start();
  const faultEnd = Date.now();
  await loading;
  const load = await partaking;
  const r = await finish(c, faultEnd, { recharges: [...funding, ...inputs, ...burst], ...load }, violations);
  return { ...r, evidence: stopped };
}

/** Deliveries the workers of one `npm start` log held when they stopped consuming. */
function drained(logFile: string): number {
  const lines = fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('draining deliveries in flight'));
  return lines.reduce((n, l) => n + Number(/"inFlight":(\d+)/.exec(l)?.[1] ?? 0), 0);
}

/**
 * A partake request that kills the partake worker on every delivery, among partakes, uses and
 * account queries served by the same process: the poison is dead-lettered, nothing else is lost,
 * and the callers that retried got one order per call.
 */
async function poisonPartake(c: Ctx, poisonUser: string): Promise<Result> {
  const { users, funding } = await fundUsers(c, 30, 'pp');
  const partaking = partakeRounds(c, users, 3, { timeoutMs: 3_000 });
  const querying = Promise.all(users.map(async (u) => [await queryAccount(c.w, u), await queryAccount(c.w, u)]));
  await sleep(300);
  const messageId = `poison-partake-${poisonUser}`;
  const poisonCall = c.w.caller.rpc(QUEUES.partake, { userId: poisonUser, activityId: ACTIVITY }, 90_000, undefined, messageId).catch(() => undefined);
  const faultEnd = Date.now();
  const load = await partaking;
  const unanswered = (await querying).flat().filter((ok) => !ok).length;
  const violations = unanswered ? [`[query-lost] ${unanswered} account queries never answered`] : [];
  const r = await finish(c, faultEnd, { recharges: funding, ...load, poison: [{ messageId }] }, violations);
  const answered = await Promise.race([poisonCall, sleep(0).then(() => undefined)]);
  if (answered) r.books.violations.push(`[poison-answered] the poison partake got a reply: ${JSON.stringify(answered)}`);
  const marks = c.w.crashes().filter((l) => l.startsWith(`partake-message:${poisonUser} `)).length;
  if (!marks) r.books.violations.push('[fault-not-shown] no partake worker died at the poison');
  return { ...r, evidence: `the partake worker died at the poison ${marks} time(s)` };
}

/**
 * Orders that expire after 3 s while their users use them right away, near the expiry, or cancel
 * and use them at once: exactly one of use / cancel / expiry wins each order, and the books see
 * every refund.
 */
async function expiryRace(c: Ctx): Promise<Result> {
  const { users, funding } = await fundUsers(c, 40, 'ex');
  const load: PartakeLoad & { cancels: CancelInput[] } = { partakes: [], uses: [], cancels: [], expectPartakes: users.length * 3 };
  const t0 = Date.now();
  await Promise.all(
    users.map(async (u, i) => {
      for (let round = 0; round < 3; round++) {
        const call = await partakeCall(c.w, u, { timeoutMs: 5_000 });
        load.partakes.push(call);
        const id = call.replies.find((r) => r.code === '0000')?.orderId;
        if (!id) continue;
        const kind = (i + round) % 3;
        if (kind === 0) load.uses.push(await useOrder(c.w, u, id, 5_000));
        else if (kind === 1) {
          await sleep(2_500 + Math.random() * 2_000); // around the expiry (3 s, swept every 2 s)
          load.uses.push(await useOrder(c.w, u, id, 5_000));
        } else {
          const [used, cancelled] = await Promise.all([useOrder(c.w, u, id, 5_000), cancelOrder(c.w, u, id, 5_000)]);
          load.uses.push(used);
          load.cancels.push(cancelled);
        }
      }
    }),
  );
  // Leave one order per user unused: expiry must cancel and refund it.
  await Promise.all(users.map(async (u) => load.partakes.push(await partakeCall(c.w, u, { timeoutMs: 5_000 }))));
  load.expectPartakes += users.length;
  await sleep(6_000);
  const r = await finish(c, t0, { recharges: funding, ...load, cancelsAllowed: true });
  const expired = c.w.grepLogs(/expired raffle orders cancelled/).length;
  const states = load.uses.reduce((m, u) => ((m[u.replies.map((x) => x.code).join('+') || 'none'] = (m[u.replies.map((x) => x.code).join('+') || 'none'] ?? 0) + 1), m), {} as Record<string, number>);
  return { ...r, evidence: `use replies ${JSON.stringify(states)}; cancels won ${load.cancels.filter((x) => x.replies.some((y) => y.code === '0000')).length}; expiry rounds logged ${expired}` };
}

/**
 * The reaper every 200 ms for reservations of any age: it meets attempts still in flight, and only
 * the request lock (which it takes before looking for the order) keeps it from giving back a unit
 * whose order is about to commit. The docs say exactness does not rest on the 15 s age: this shows it.
 */
async function eagerReaper(c: Ctx): Promise<Result> {
  const inputs = recharges(1_500, { users: 300, sku: SKU.limited, prefix: 'eager' });
  const t0 = Date.now();
  await send(c.w, inputs, { concurrency: 30, ratePerSec: 300 });
  const r = await finish(c, t0, { recharges: inputs });
  const reaped = c.w.grepLogs(/orphaned stock reservations settled/).length;
  return { ...r, evidence: `${reaped} reaper rounds settled reservations of attempts in flight` };
}

const poisonUser = `poison-${Math.random().toString(36).slice(2, 8)}`;

export const MORE_SCENARIOS: Scenario[] = [
  {
    name: 'sigterm-in-flight',
    quick: true,
    load: '500 recharges (350 unlimited, 150 vs stock 100) at 250/s, a burst of 150, and 50 users × 4 partake+use rounds',
    fault: 'SIGTERM to npm start after 200 recharges and a burst of 150 at once, with messages in flight; restart once it has stopped',
    run: () => inWorld({ env: { LOG_LEVEL: 'info' } }, sigtermInFlight),
  },
  {
    name: 'poison-partake',
    quick: true,
    load: '30 users × 3 partake+use rounds and 2 account queries each, DELIVERY_LIMIT=3, one poison partake',
    fault: 'a partake request that kills the partake worker on every delivery (AQ_CRASH_AT=partake-message:<userId>)',
    run: () => inWorld({ env: { DELIVERY_LIMIT: '3', AQ_CRASH_AT: `partake-message:${poisonUser}` } }, (c) => poisonPartake(c, poisonUser)),
  },
  {
    name: 'eager-reaper',
    quick: false,
    load: '1500 recharges of one SKU (stock 1000) by 300 users at 300/s',
    fault: 'the stock reaper every 200 ms for reservations of any age (STOCK_REAPER_MS=200, STOCK_REAPER_AGE_SECONDS=0)',
    run: () => inWorld({ stock: 1_000, env: { STOCK_REAPER_MS: '200', STOCK_REAPER_AGE_SECONDS: '0' } }, eagerReaper),
  },
  {
    name: 'expiry-cancel-use',
    quick: false,
    load: '40 users × 3 rounds: partake, then use at once / use near the 3 s expiry / use and cancel at once; then one order each left to expire',
    fault: 'orders expiring (TTL 3 s) and cancels racing uses (no injected failure)',
    run: () => inWorld({ catalog: catalog(100, { ttlSeconds: 3 }) }, expiryRace),
  },
];
