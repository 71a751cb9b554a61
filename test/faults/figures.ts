import type { HealthyRow } from './harness';

/**
 * The healthy-part figures of the partial-failure scenarios, pure: samples in, rows and violations
 * out (unit-tested in test/unit/fault-figures.test.ts).
 */

/** One piece of work: when it was sent and when it was done (undefined: never, as far as the test saw). */
export type Sample = Readonly<{ at: number; done?: number }>;
export type Window = Readonly<{ from: number; to: number }>;
/** A measured kind of work (e.g. "shard 1 recharges") and whether it is the part meant to fail. */
export type Series = Readonly<{ name: string; failing: boolean; samples: readonly Sample[] }>;

/** The healthy part must keep at least this share of its baseline throughput. */
export const GOAL = 0.7;
/** The failing part must lose more than half of its own: that shows the fault happened. */
export const FAULT_SHOWN = 0.5;

/** The 99th percentile (nearest rank); NaN for no values. */
export function p99(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
}

/** Throughput = completions inside the window per second; p99 = latency of the work sent inside it and done. */
export function measure(samples: readonly Sample[], win: Window): { perSec: number; p99Ms: number } {
  const within = (t: number) => t >= win.from && t < win.to;
  const done = samples.filter((x) => x.done !== undefined && within(x.done)).length;
  return { perSec: done / ((win.to - win.from) / 1000), p99Ms: p99(samples.filter((x) => within(x.at) && x.done !== undefined).map((x) => x.done! - x.at)) };
}

/** Each series during the fault against its baseline, with the goal it must meet; a missed goal is a violation. */
export function judge(series: readonly Series[], base: Window, fault: Window): { rows: HealthyRow[]; violations: string[] } {
  const rows: HealthyRow[] = [];
  const violations: string[] = [];
  for (const s of series) {
    if (!s.samples.length) continue;
    const b = measure(s.samples, base);
    const f = measure(s.samples, fault);
    const ratio = b.perSec ? f.perSec / b.perSec : 0;
    const ok = s.failing ? ratio < FAULT_SHOWN : b.perSec > 0 && ratio >= GOAL;
    const pct = `${(ratio * 100).toFixed(0)} %`;
    rows.push({
      part: s.failing ? `${s.name} (the failing part)` : s.name,
      baselinePerSec: b.perSec,
      faultPerSec: f.perSec,
      ratio,
      baselineP99Ms: b.p99Ms,
      faultP99Ms: f.p99Ms,
      goal: s.failing ? `< ${FAULT_SHOWN * 100} % (the fault happened)` : `≥ ${GOAL * 100} % of baseline`,
      ok,
    });
    if (!ok && s.failing) violations.push(`[fault-not-shown] ${s.name} kept ${pct} of its baseline during the fault`);
    if (!ok && !s.failing) violations.push(`${s.name}: ${f.perSec.toFixed(1)}/s during the fault, ${pct} of its baseline ${b.perSec.toFixed(1)}/s (goal ≥ ${GOAL * 100} %)`);
  }
  return { rows, violations };
}
