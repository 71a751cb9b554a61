import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { periodOf } from '../../domain/calendar';
import { daysBetween, offsetMinutes, testDay, testMonth } from '../support/calendar';

test("the test's calendar: offsets read from the zone", () => {
  assert.is(offsetMinutes('UTC', new Date('2026-06-01T00:00:00Z')), 0);
  assert.is(offsetMinutes('Asia/Kathmandu', new Date('2026-06-01T00:00:00Z')), 345);
  assert.is(offsetMinutes('America/New_York', new Date('2026-01-15T12:00:00Z')), -300);
  assert.is(offsetMinutes('America/New_York', new Date('2026-07-15T12:00:00Z')), -240);
});

test("the test's calendar: days and months at the edges", () => {
  assert.is(testDay('Asia/Shanghai', Date.parse('2026-05-31T16:30:00Z')), '2026-06-01');
  assert.is(testMonth('Asia/Shanghai', Date.parse('2026-05-31T16:30:00Z')), '2026-06');
  assert.is(testDay('Asia/Kathmandu', Date.parse('2026-05-31T18:14:59.999Z')), '2026-05-31');
  assert.is(testDay('Asia/Kathmandu', Date.parse('2026-05-31T18:15:00.000Z')), '2026-06-01');
  assert.is(testDay('Pacific/Kiritimati', Date.parse('2026-12-31T10:00:00Z')), '2027-01-01');
  assert.is(testDay('America/New_York', Date.parse('2026-03-08T04:59:59Z')), '2026-03-07');
  assert.is(testDay('America/New_York', Date.parse('2026-03-08T05:00:00Z')), '2026-03-08');
});

test('a window across midnight may fall on either day', () => {
  assert.equal(daysBetween('UTC', Date.parse('2026-06-01T23:59:59Z'), Date.parse('2026-06-02T00:00:01Z')), ['2026-06-01', '2026-06-02']);
  assert.equal(daysBetween('UTC', Date.parse('2026-06-01T10:00:00Z'), Date.parse('2026-06-01T10:00:05Z')), ['2026-06-01']);
});

test("the test's calendar and the service's agree on 20,000 instants in 8 zones (two independent codes)", () => {
  const zones = ['UTC', 'Asia/Shanghai', 'Asia/Kathmandu', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns'];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 20_000; i++) {
    const t = Date.parse('2020-01-01T00:00:00Z') + Math.floor(rnd() * 10 * 365 * 86_400_000);
    const z = zones[i % zones.length]!;
    assert.is(testDay(z, t), periodOf(new Date(t), z).day, `${z} ${new Date(t).toISOString()}`);
  }
});

test.run();
