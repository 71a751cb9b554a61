import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { periodOf } from '../../domain/calendar';

test('UTC day and month', () => {
  assert.equal(periodOf(new Date('2026-03-01T00:00:00Z'), 'UTC'), { day: '2026-03-01', month: '2026-03' });
});

test('midnight in UTC+8 is still the previous day in UTC', () => {
  const t = new Date('2026-05-31T16:30:00Z'); // 00:30 on 1 June in Shanghai
  assert.equal(periodOf(t, 'Asia/Shanghai'), { day: '2026-06-01', month: '2026-06' });
  assert.equal(periodOf(t, 'UTC'), { day: '2026-05-31', month: '2026-05' });
});

test('leap year: Feb 28 -> 29 -> Mar 1', () => {
  assert.is(periodOf(new Date('2028-02-28T23:59:59Z'), 'UTC').day, '2028-02-28');
  assert.is(periodOf(new Date('2028-02-29T00:00:00Z'), 'UTC').day, '2028-02-29');
  assert.equal(periodOf(new Date('2028-03-01T00:00:00Z'), 'UTC'), { day: '2028-03-01', month: '2028-03' });
});

test('a day that begins at a quarter hour: the answer changes on the exact millisecond, called back to back', () => {
  // Kathmandu is UTC+05:45: 1 June begins at 18:15:00.000 UTC on 31 May.
  assert.is(periodOf(new Date('2026-05-31T18:14:59.998Z'), 'Asia/Kathmandu').day, '2026-05-31');
  assert.is(periodOf(new Date('2026-05-31T18:14:59.999Z'), 'Asia/Kathmandu').day, '2026-05-31');
  assert.is(periodOf(new Date('2026-05-31T18:15:00.000Z'), 'Asia/Kathmandu').day, '2026-06-01');
  assert.is(periodOf(new Date('2026-05-31T18:14:59.999Z'), 'Asia/Kathmandu').day, '2026-05-31', 'and back');
});

test.run();
