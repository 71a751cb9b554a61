import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boundedCache } from '../../infra/catalog-read';

test('a hit within the TTL is served from the cache; after it, loaded again', async () => {
  let t = 0;
  let loads = 0;
  const c = boundedCache({ ttlMs: 1_000, now: () => t });
  const load = async () => ++loads;
  assert.is(await c.get('a', load), 1);
  t = 999;
  assert.is(await c.get('a', load), 1);
  t = 2_000;
  assert.is(await c.get('a', load), 2);
});

test('a flood of distinct keys never holds more than maxEntries; the recently used survive', async () => {
  const c = boundedCache({ ttlMs: 60_000, maxEntries: 100, now: () => 0 });
  let hotLoads = 0;
  for (let i = 0; i < 40_000; i++) {
    await c.get(`miss:${i}`, async () => undefined);
    if (i % 50 === 0) await c.get('hot', async () => ++hotLoads);
  }
  assert.is(c.size(), 100);
  assert.is(hotLoads, 1, 'the hot key stayed cached through the flood');
});

test('a failed load is not kept', async () => {
  const c = boundedCache({ now: () => 0 });
  await c.get('x', async () => Promise.reject(new Error('db down'))).catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  assert.is(c.size(), 0);
  assert.is(await c.get('x', async () => 7), 7);
});

test.run();
