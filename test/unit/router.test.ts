import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPowerOfTwo, javaHash, route } from '../../domain/router';

test('javaHash matches Java String.hashCode', () => {
  assert.is(javaHash(''), 0);
  assert.is(javaHash('a'), 97);
  assert.is(javaHash('hello'), 99162322);
  assert.is(javaHash('Aa'), 2112); // Java's classic collision: "Aa" and "BB"
  assert.is(javaHash('BB'), 2112);
  assert.is(javaHash('polygenelubricants'), -2147483648); // wraps to Integer.MIN_VALUE in Java
  assert.ok(Number.isInteger(javaHash('x'.repeat(1000))) && Math.abs(javaHash('x'.repeat(1000))) <= 2 ** 31);
});

test('contract vectors with 2 shards x 4 tables', () => {
  for (const [user, shard, suffix] of [
    ['xiaofuge', 1, '001'],
    ['user001', 2, '000'],
    ['user003', 1, '002'],
    ['xiaofuge2', 2, '003'],
  ] as const) {
    const r = route(user, 2, 4);
    assert.equal([r.shard, r.suffix], [shard, suffix], user);
  }
});

test('non-ASCII ids hash by UTF-16 code units, surrogate pairs as two units', () => {
  // Java: "é".hashCode() == 233, "中".hashCode() == 20013, "😀".hashCode() == 31*55357+56832 == 1772899
  assert.is(javaHash('é'), 233);
  assert.is(javaHash('中'), 20013);
  assert.is(javaHash('😀'), 1772899);
  assert.is(javaHash('用户'), 31 * 0x7528 + 0x6237);
});

test('other shard x table counts stay in range and use every slot', () => {
  for (const [s, t] of [
    [1, 1],
    [4, 4],
    [2, 8],
    [1, 16],
  ] as const) {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const r = route(`user-${i}`, s, t);
      assert.ok(r.shard >= 1 && r.shard <= s, `shard ${r.shard} of ${s}`);
      assert.ok(Number(r.suffix) < t && r.suffix.length === 3, `suffix ${r.suffix} of ${t}`);
      assert.is(r.index, (r.shard - 1) * t + Number(r.suffix));
      seen.add(`${r.shard}/${r.suffix}`);
    }
    assert.is(seen.size, s * t, `${s}x${t} slots used`);
  }
  assert.equal(route('anyone', 1, 1), { index: 0, shard: 1, suffix: '000' });
});

test('known values for 4 x 4 and 2 x 8 follow the formula', () => {
  const h = javaHash('xiaofuge');
  const mix = h ^ (h >>> 16);
  assert.is(route('xiaofuge', 4, 4).index, 15 & mix);
  assert.is(route('xiaofuge', 2, 8).index, 15 & mix);
  assert.is(route('xiaofuge', 2, 8).shard, Math.floor((15 & mix) / 8) + 1);
});

test('isPowerOfTwo', () => {
  assert.ok(isPowerOfTwo(1) && isPowerOfTwo(8) && isPowerOfTwo(1024));
  assert.not.ok(isPowerOfTwo(0) || isPowerOfTwo(6) || isPowerOfTwo(-4) || isPowerOfTwo(2.5));
});

test.run();
