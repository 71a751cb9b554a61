import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limitedCommits, longestGap, type Sample } from '../faults/gaps';

/** Samples every 200 ms from t = 0; `n` per shard at each. */
const series = (rows: Array<[number, number, number?]>): Sample[] => rows.map(([a, b, l], i) => ({ t: i * 200, n: [a, b], limited: [l ?? 0, 0] }));

test('longestGap: the pause from the last growth to the next, on the shards asked for', () => {
  // shard 0 grows steadily; shard 1 stops after t=400 and grows again at t=1600
  const s = series([
    [0, 0],
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 2],
    [5, 2],
    [6, 2],
    [7, 2],
    [8, 3],
    [9, 4],
  ]);
  assert.is(longestGap(s, 0, 2_000), 200, 'all shards together never paused');
  assert.is(longestGap(s, 0, 2_000, [1]), 1_200, 'shard 1: 400 → 1600');
  assert.is(longestGap(s, 0, 2_000, [0]), 200);
});

test('longestGap: a pause outside [from, until] does not count; one still running at the end does', () => {
  const s = series([
    [0, 0],
    [1, 0],
    [1, 0],
    [1, 0],
    [1, 0],
    [2, 0],
    [3, 0],
    [4, 0],
    [4, 0],
    [4, 0],
  ]);
  assert.is(longestGap(s, 0, 10_000), 800, '200 → 1000');
  assert.is(longestGap(s, 1_100, 10_000), 400, 'only the pause that is still running at the end (1400 → 1800)');
  assert.is(longestGap(s, 1_100, 1_300), 200, 'only the regular step 1000 → 1200; the final pause starts after until');
  assert.is(longestGap([], 0, 1), 0);
});

test('limitedCommits: first growth after a time, and commits within a window', () => {
  const s = series([
    [0, 0, 5],
    [0, 0, 6],
    [0, 0, 6],
    [0, 0, 6],
    [0, 0, 6],
    [0, 0, 9],
  ]);
  const l = limitedCommits(s, 300);
  assert.is(l.firstAfter, 1_000);
  assert.is(l.between(300, 900), 0, 'nothing between 300 and 900');
  assert.is(l.between(0, 1_000), 4);
  assert.is(limitedCommits(s, 1_100).firstAfter, undefined);
});

test.run();
