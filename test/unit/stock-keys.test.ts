import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashTag, legacyKeys, rebuildLockKey, RESERVED_PATTERN, reservedKey, skuOfReservedKey, stockKey } from '../../infra/stock-keys';

/** Redis glob with `*` only (all RESERVED_PATTERN uses). */
const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

test('hashTag follows Redis Cluster: the first non-empty {…}, else the whole key', () => {
  assert.is(hashTag('a{b}c'), 'b');
  assert.is(hashTag('{a}{b}'), 'a');
  assert.is(hashTag('x}{y}'), 'y');
  assert.is(hashTag('{}x'), '{}x', 'an empty tag hashes the whole key');
  assert.is(hashTag('a{b'), 'a{b');
  assert.is(hashTag('plain'), 'plain');
});

test('every key of a SKU carries the same tag (one slot), and SKUs differ', () => {
  for (const sku of [1, 9011, 2 ** 40]) {
    const tags = new Set([stockKey(sku), reservedKey(sku), rebuildLockKey(sku)].map(hashTag));
    assert.equal([...tags], [`sku:${sku}`]);
  }
  assert.is.not(hashTag(stockKey(9011)), hashTag(stockKey(9012)));
  // A deployment's key prefix (no braces allowed) leaves the tag alone.
  assert.is(hashTag(`tenant-a:${reservedKey(7)}`), hashTag(stockKey(7)));
});

test("the old layout put a SKU's counter and reservations in different slots (what Redis Cluster refused)", () => {
  const [counter, reserved] = legacyKeys(9011);
  assert.is.not(hashTag(counter!), hashTag(reserved!));
  assert.ok(
    legacyKeys(9011).every((k) => !k.includes('{')),
    'legacy keys are not the new ones',
  );
});

test("the reaper's SCAN pattern matches reservation hashes only, and their SKU is read back", () => {
  const re = glob(RESERVED_PATTERN);
  assert.ok(re.test(reservedKey(9011)));
  assert.not.ok(re.test(stockKey(9011)));
  assert.not.ok(re.test(rebuildLockKey(9011)));
  assert.not.ok(re.test(legacyKeys(9011)[1]!));
  assert.is(skuOfReservedKey(reservedKey(9011)), 9011);
  assert.is(skuOfReservedKey(stockKey(9011)), undefined);
  assert.is(skuOfReservedKey(legacyKeys(9011)[1]!), undefined);
  assert.is(skuOfReservedKey('activity:stock:{sku:12x}:reserved'), undefined);
});

test.run();
