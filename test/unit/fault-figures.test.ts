import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { judge, measure, p99, type Sample } from '../../test/faults/figures';

const base = { from: 0, to: 10_000 };
const fault = { from: 10_000, to: 20_000 };
/** `n` pieces of work per second over [from, to), each done `latencyMs` later (undefined latency: never done). */
const steady = (from: number, to: number, perSec: number, latencyMs?: number): Sample[] =>
  Array.from({ length: Math.round(((to - from) / 1000) * perSec) }, (_, i) => {
    const at = from + (i * 1000) / perSec;
    return { at, done: latencyMs === undefined ? undefined : at + latencyMs };
  });

test('p99: nearest rank; NaN without values', () => {
  assert.is(p99(Array.from({ length: 100 }, (_, i) => i + 1)), 99);
  assert.is(p99([5]), 5);
  assert.is(p99([3, 1, 2]), 3);
  assert.ok(Number.isNaN(p99([])));
});

test('measure: completions inside the window per second, p99 of the work sent inside it', () => {
  const m = measure(steady(0, 10_000, 40, 20), base);
  assert.ok(Math.abs(m.perSec - 40) < 0.2, String(m.perSec));
  assert.is(m.p99Ms, 20);
  const late = [{ at: 9_000, done: 15_000 }, { at: 12_000 }];
  assert.equal(measure(late, fault), { perSec: 0.1, p99Ms: NaN });
  assert.equal(measure(late, base).p99Ms, 6_000, 'sent in the baseline, done in the fault');
});

test('judge: a healthy part that keeps its throughput passes; one that stalls is a violation', () => {
  const kept = judge([{ name: 'shard 1 recharges', failing: false, samples: steady(0, 20_000, 40, 25) }], base, fault);
  assert.is(kept.rows[0]!.ok, true);
  assert.equal(kept.violations, []);
  const stalled = judge([{ name: 'shard 1 recharges', failing: false, samples: [...steady(0, 10_000, 40, 25), ...steady(10_000, 20_000, 40)] }], base, fault);
  assert.is(stalled.rows[0]!.ok, false);
  assert.match(stalled.violations[0]!, /shard 1 recharges: 0\.\d\/s during the fault, 0 % of its baseline (39\.9|40\.0)\/s \(goal ≥ 70 %\)/);
  const slowed = judge([{ name: 'x', failing: false, samples: [...steady(0, 10_000, 40, 25), ...steady(10_000, 20_000, 20, 25)] }], base, fault);
  assert.is(slowed.rows[0]!.ok, false, '50 % < 70 %');
});

test('judge: the failing part must lose most of its throughput, else the fault did not happen', () => {
  const down = judge([{ name: 'shard 2 recharges', failing: true, samples: [...steady(0, 10_000, 40, 25), ...steady(10_000, 20_000, 40)] }], base, fault);
  assert.equal([down.rows[0]!.ok, down.rows[0]!.part, down.violations], [true, 'shard 2 recharges (the failing part)', []]);
  const unharmed = judge([{ name: 'shard 2 recharges', failing: true, samples: steady(0, 20_000, 40, 25) }], base, fault);
  assert.is(unharmed.rows[0]!.ok, false);
  assert.match(unharmed.violations[0]!, /^\[fault-not-shown\] shard 2 recharges kept 100 %/);
});

test('judge: no baseline at all is not a pass; a series without samples gives no row', () => {
  const none = judge([{ name: 'x', failing: false, samples: steady(10_000, 20_000, 10, 5) }], base, fault);
  assert.is(none.rows[0]!.ok, false);
  assert.equal(judge([{ name: 'empty', failing: false, samples: [] }], base, fault).rows, []);
});

test.run();
