/** One reading of the commit sampler: per shard, the outbox tasks and the limited SKU's completed recharges. */
export type Sample = Readonly<{ t: number; n: readonly number[]; limited: readonly number[] }>;

/**
 * The longest time (ms) without a new commit on `shards` (0-based indexes; all by default) that
 * overlaps [from, until]: from the last sample before a pause to the first sample that shows growth.
 */
export function longestGap(samples: readonly Sample[], from: number, until: number, shards?: readonly number[]): number {
  const total = (n: readonly number[]) => n.reduce((a, v, i) => (!shards || shards.includes(i) ? a + v : a), 0);
  let gap = 0;
  let lastGrowth: number | undefined;
  let prev: number | undefined;
  for (const s of samples) {
    const n = total(s.n);
    if (prev !== undefined && n > prev) {
      if (lastGrowth !== undefined && lastGrowth <= until && s.t >= from) gap = Math.max(gap, s.t - lastGrowth);
      lastGrowth = s.t;
    }
    if (lastGrowth === undefined) lastGrowth = s.t;
    prev = n;
  }
  // A pause that never ended while sampled counts up to the last sample.
  const end = samples[samples.length - 1]?.t;
  if (end !== undefined && lastGrowth !== undefined && lastGrowth <= until && end >= from) gap = Math.max(gap, end - lastGrowth);
  return gap;
}

/** The first sample time at or after `since` when the limited SKU's completed recharges grew; and how many committed in [a, b]. */
export function limitedCommits(samples: readonly Sample[], since: number): { firstAfter?: number; between(a: number, b: number): number } {
  const sum = (x: readonly number[]) => x.reduce((a, v) => a + v, 0);
  const at = (t: number) => sum([...samples].reverse().find((s) => s.t <= t)?.limited ?? samples[0]?.limited ?? [0]);
  let firstAfter: number | undefined;
  for (const s of samples) if (s.t >= since && sum(s.limited) > at(since)) firstAfter ??= s.t;
  return { firstAfter, between: (a, b) => at(b) - at(a) };
}
