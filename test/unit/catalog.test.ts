import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateCatalog } from '../../domain/catalog';

const good = () => ({
  activities: [{ activityId: 100301, name: 'Spring raffle', desc: 'd', strategyId: 100006, beginTime: '2026-01-01T00:00:00Z', endTime: '2027-01-01T00:00:00Z', state: 'open' }],
  counts: [{ activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 }],
  skus: [{ sku: 9011, activityId: 100301, activityCountId: 11101, stockCount: 1000, productAmount: '0' }],
  behaviorRebates: [{ behavior: 'sign', sku: 9011, desc: 'daily sign-in', state: 'open' }],
});

test('the contract example validates', () => {
  const v = validateCatalog(good());
  assert.ok(v.ok);
  if (v.ok) {
    assert.is(v.catalog.skus[0]!.stockCount, 1000);
    assert.equal(v.catalog.activities[0]!.beginTime, new Date('2026-01-01T00:00:00Z'));
  }
});

test('unlimited stock (-1) is allowed, -2 is not', () => {
  const c = good();
  c.skus[0]!.stockCount = -1;
  assert.ok(validateCatalog(c).ok);
  c.skus[0]!.stockCount = -2;
  assert.not.ok(validateCatalog(c).ok);
});

test('raffleOrderTtlSeconds: a positive whole number, or absent (never expire); anything else is named', () => {
  const withTtl = (ttl: unknown) => {
    const c: any = good();
    c.activities[0].raffleOrderTtlSeconds = ttl;
    return validateCatalog(c);
  };
  const ok = withTtl(1800);
  assert.ok(ok.ok && ok.catalog.activities[0]!.raffleOrderTtlSeconds === 1800);
  const none = validateCatalog(good());
  assert.ok(none.ok && !('raffleOrderTtlSeconds' in none.catalog.activities[0]!));
  const nul = withTtl(null);
  assert.ok(nul.ok && nul.catalog.activities[0]!.raffleOrderTtlSeconds === undefined);
  for (const bad of [0, -5, 1.5, '30', 2 ** 31, true]) {
    const v = withTtl(bad);
    assert.ok(!v.ok && v.problems.some((p) => p.startsWith('activities[0].raffleOrderTtlSeconds must be a positive whole number')), JSON.stringify(bad));
  }
});

test('every problem is named at once', () => {
  const c: any = good();
  c.activities[0].endTime = '2025-01-01T00:00:00Z'; // before begin
  c.activities.push({ ...c.activities[0], endTime: '2027-01-01T00:00:00Z' }); // duplicate id
  c.counts[0].dayCount = -1;
  c.skus[0].sku = '9011';
  c.skus.push({ sku: 9012, activityId: 5, activityCountId: 11101, stockCount: 1, productAmount: 'free' });
  c.behaviorRebates[0].state = 'on';
  c.extra = true;
  const v = validateCatalog(c);
  assert.not.ok(v.ok);
  if (!v.ok) {
    const text = v.problems.join('\n');
    for (const part of [
      'beginTime must be before endTime',
      'activityId 100301 appears twice',
      'counts[0].dayCount',
      'skus[0].sku',
      'activityId 5 is neither',
      'skus[1].productAmount',
      'behaviorRebates[0].state',
      'unknown top-level key "extra"',
    ]) {
      assert.ok(text.includes(part), `missing problem: ${part}\n${text}`);
    }
    assert.is(v.problems.length, 8);
  }
});

test('references may point at ids already in the database', () => {
  const v = validateCatalog(
    { skus: [{ sku: 1, activityId: 7, activityCountId: 8, stockCount: 5 }], behaviorRebates: [{ behavior: 'sign', sku: 2, state: 'open' }] },
    { activityIds: new Set([7]), activityCountIds: new Set([8]), skus: new Set([2]) },
  );
  assert.ok(v.ok, JSON.stringify(v));
});

test('a section that is not an array is named once', () => {
  assert.equal(validateCatalog({ skus: {} }), { ok: false, problems: ['skus must be an array'] });
});

test('not an object', () => {
  assert.equal(validateCatalog([]), { ok: false, problems: ['the file is not a JSON object'] });
});

test.run();
