import type { Driver } from '../driver';
import { runCallers } from '../driver';
import { log, progress, round, sleep } from '../support';
import { SOAK_ACTIVITY, SOAK_PARTAKE_USERS, SOAK_SKUS, soakUser, workerRss } from './soak';

/**
 * The catalog-cache flood of issue 14 (`npm run bench -- --flood N`): N partakes with random
 * activity ids and N recharges with random SKUs, twice, against a warmed pipeline. Each id is a
 * cache miss (ERR_BIZ_010); a bounded cache keeps the workers' memory where it was.
 */
export type FloodResult = Readonly<{ n: number; rss: Array<{ at: string; rss: Record<string, number> }> }>;

export async function floodScenario(d: Driver, pgid: number, n: number, runId: string): Promise<FloodResult> {
  const rss: FloodResult['rss'] = [];
  const sample = async (at: string, settleMs = 10_000) => {
    await sleep(settleMs); // let the queues, the fast path and the collector settle
    const reads: Array<Record<string, number>> = [];
    for (let i = 0; i < 5; i++, await sleep(1_000)) reads.push(workerRss(pgid));
    const median = (w: string) => round(reads.map((r) => r[w] ?? 0).sort((a, b) => a - b)[2]!);
    rss.push({ at, rss: Object.fromEntries(Object.keys(reads[0]!).map((w) => [w, median(w)])) });
    log(`flood: RSS ${at}: ${JSON.stringify(rss[rss.length - 1]!.rss)}`);
  };
  await burst(
    d,
    2_000,
    runId,
    'warm',
    () => SOAK_ACTIVITY,
    () => SOAK_SKUS.free,
  );
  // Start-up memory (module loading, first pools) is handed back only after a while: wait longer here.
  await sample('after 2,000 + 2,000 known ids (before the flood)', 40_000);
  for (const pass of [1, 2]) {
    const random = () => 1_000_000 + Math.floor(Math.random() * 1e12);
    await burst(d, n, runId, `flood${pass}`, random, random);
    await sample(`after flood ${pass} (${n} random activity ids + ${n} random SKUs)`);
  }
  return { n, rss };
}

/** `n` partakes (64 callers, request/reply) and `n` recharges (256 unconfirmed at most), until every recharge is consumed. */
async function burst(d: Driver, n: number, runId: string, name: string, activityId: () => number, sku: () => number): Promise<void> {
  const bar = progress(`flood ${name}`, 2 * n);
  let partakes = 0;
  await runCallers(
    64,
    () => partakes >= n,
    async (c) => {
      partakes++;
      await d.rpc('activity.partake', { userId: soakUser((c * 97 + partakes) % SOAK_PARTAKE_USERS), activityId: activityId() }, 30_000).catch(() => undefined);
      bar.tick();
    },
  );
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < n; i++) {
    while (inflight.size >= 256) await Promise.race(inflight);
    const p = d.publish('', 'activity.recharge', { userId: `flood-${i % 5000}`, sku: sku(), outBusinessNo: `flood-${runId}-${name}-${i}` }).then(
      () => void bar.tick(),
      () => undefined,
    );
    const q = p.finally(() => inflight.delete(q));
    inflight.add(q);
  }
  await Promise.all(inflight);
  for (;;) {
    const { messageCount } = await d.sub.checkQueue('activity.recharge');
    if (messageCount === 0) break;
    await sleep(500);
  }
  bar.done();
}
