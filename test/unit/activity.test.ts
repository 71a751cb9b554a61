import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withinDates } from '../../domain/activity';
import type { Activity } from '../../domain/catalog';
import { checkActivity } from '../../domain/partake';
import { checkRecharge } from '../../domain/recharge';

const BEGIN = new Date('2026-01-01T00:00:00Z');
const END = new Date('2027-01-01T00:00:00Z');
const activity: Activity = { activityId: 100301, name: 'Spring raffle', desc: '', strategyId: 100006, beginTime: BEGIN, endTime: END, state: 'open' };
const sku = { sku: 9011, stockCount: 100, activity, counts: { activityCountId: 11101, totalCount: 10, dayCount: 3, monthCount: 6 } };
const ms = (d: Date, delta: number) => new Date(d.getTime() + delta);

/** Partake and recharge answer the same at each edge of [begin, end). */
const edges: Array<[string, Date, boolean]> = [
  ['a millisecond before begin', ms(BEGIN, -1), false],
  ['at begin', BEGIN, true],
  ['a millisecond before end', ms(END, -1), true],
  ['at end', END, false],
  ['after end', ms(END, 1), false],
];

for (const [name, now, inside] of edges) {
  test(`${name}: ${inside ? 'inside' : 'outside (ERR_BIZ_004)'} for partake and recharge alike`, () => {
    assert.is(withinDates(activity, now), inside);
    const p = checkActivity(activity, now);
    const r = checkRecharge(sku, now);
    assert.is(p.ok, inside);
    assert.is(r.ok, inside);
    if (!p.ok && !r.ok) assert.equal([p.code, r.code, p.info], ['ERR_BIZ_004', 'ERR_BIZ_004', r.info]);
  });
}

test('not open beats the dates: 003 from both', () => {
  const closed = { ...activity, state: 'close' as const };
  const p = checkActivity(closed, ms(END, 1));
  const r = checkRecharge({ ...sku, activity: closed }, ms(END, 1));
  assert.equal([p.ok || p.code, r.ok || r.code], ['ERR_BIZ_003', 'ERR_BIZ_003']);
});

test.run();
