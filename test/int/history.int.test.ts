import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { QUEUES } from '../../infra/topology';
import { COUNTS, aSku, anActivity, load, openWorld, type World } from './recharge-world';
import { cancel, credited, history, partake, quotaRows, use, waitFor } from './lifecycle-world';

const test = suite('history');
let w: World;

const A = 100301;
const OTHER = 100302;
const COUNTS_B = { activityCountId: 11102, totalCount: 5, dayCount: 2, monthCount: 4 };

test.before(async () => {
  w = await openWorld(['recharge', 'partake']);
  await load(w, {
    activities: [anActivity(A), anActivity(OTHER)],
    counts: [COUNTS, COUNTS_B],
    skus: [aSku(9011, A, -1), { ...aSku(9012, A, 2), activityCountId: 11102 }, aSku(9021, OTHER, -1)],
  });
});
test.after(async () => w?.close());

const all = async (userId: string, activityId = A) => (await history(w, { userId, activityId, limit: 100 })).data;

test('after a mixed run the account adds up to its history: credits sum to the counts, orders not cancelled to what was spent', async () => {
  const u = 'hist-ann';
  await w.client.publish(QUEUES.recharge, { userId: u, sku: 9011, outBusinessNo: 'h-0', payType: 'cash', payAmount: '12.50' });
  await w.client.waitEvent((e) => e.data?.outBusinessNo === 'h-0', 10_000);
  for (const obn of ['h-1', 'h-2']) await credited(w, u, 9011, obn);
  for (const obn of ['b-1', 'b-2']) await credited(w, u, 9012, obn);
  await w.client.publish(QUEUES.recharge, { userId: u, sku: 9012, outBusinessNo: 'b-3' }); // stock 2: rejected, not an order
  await w.client.waitEvent((e) => e.key === 'recharge.rejected' && e.data?.outBusinessNo === 'b-3', 10_000);
  await w.client.publish(QUEUES.recharge, { userId: u, sku: 9011, outBusinessNo: 'h-1' }); // a duplicate
  await credited(w, u, 9021, 'o-1'); // another activity
  await credited(w, 'hist-bob', 9011, 'h-0'); // another user
  const outcomes = [];
  for (const next of ['use', 'cancel', 'use', 'use', 'cancel', 'keep'] as const) {
    const p = await partake(w, u, A);
    assert.is(p.code, '0000');
    if (next === 'use') assert.is((await use(w, u, p.data.orderId)).code, '0000');
    if (next === 'cancel') assert.is((await cancel(w, u, p.data.orderId)).code, '0000');
    outcomes.push({ orderId: p.data.orderId, orderState: next === 'keep' ? 'create' : next === 'use' ? 'used' : 'cancel' });
  }
  await new Promise((r) => setTimeout(r, 500)); // the duplicate recharge has been handled by now

  const h = await all(u);
  assert.equal(
    h.recharges.map((r: any) => r.outBusinessNo),
    ['b-2', 'b-1', 'h-2', 'h-1', 'h-0'],
  );
  assert.equal(h.recharges[4], {
    orderId: h.recharges[4].orderId,
    sku: 9011,
    outBusinessNo: 'h-0',
    totalCount: 10,
    dayCount: 3,
    monthCount: 6,
    payType: 'cash',
    payAmount: '12.50',
    orderTime: h.recharges[4].orderTime,
  });
  assert.equal(
    h.raffleOrders.map((o: any) => ({ orderId: o.orderId, orderState: o.orderState })),
    outcomes.reverse(),
  );
  for (const list of [h.recharges, h.raffleOrders]) {
    const times = list.map((x: any) => Date.parse(x.orderTime));
    assert.equal(
      times,
      [...times].sort((a: number, b: number) => b - a),
      'newest first',
    );
  }

  const q = await quotaRows(w, u, A);
  const sum = (k: string) => h.recharges.reduce((n: number, r: any) => n + r[k], 0);
  const spent = h.raffleOrders.filter((o: any) => o.orderState !== 'cancel').length;
  assert.equal([q.account!.total_count, q.account!.day_count, q.account!.month_count], [sum('totalCount'), sum('dayCount'), sum('monthCount')]);
  assert.is(q.account!.total_count_surplus, sum('totalCount') - spent);
  assert.equal([q.day.day_count, q.day.day_count_surplus], [sum('dayCount'), sum('dayCount') - spent]);
  assert.equal([q.month.month_count, q.month.month_count_surplus], [sum('monthCount'), sum('monthCount') - spent]);
  assert.equal((await all('hist-bob')).recharges.length, 1);
  assert.equal(
    (await all(u, OTHER)).recharges.map((r: any) => r.outBusinessNo),
    ['o-1'],
  );
  assert.equal(await all('nobody'), { recharges: [], raffleOrders: [] });
});

test('pages: limit caps each list, before (epoch ms, exclusive) continues where a page ended', async () => {
  const u = 'hist-ann';
  const full = await all(u);
  const pages: any[] = [];
  let before: number | undefined;
  for (;;) {
    const page = (await history(w, { userId: u, activityId: A, limit: 2, ...(before === undefined ? {} : { before }) })).data;
    assert.ok(page.recharges.length <= 2 && page.raffleOrders.length <= 2);
    if (!page.recharges.length) break;
    pages.push(...page.recharges);
    before = Date.parse(page.recharges[page.recharges.length - 1].orderTime);
  }
  assert.equal(pages, full.recharges);
  const newest = Date.parse(full.raffleOrders[0].orderTime);
  assert.equal((await history(w, { userId: u, activityId: A, before: newest })).data.raffleOrders, full.raffleOrders.slice(1));
  assert.equal((await history(w, { userId: u, activityId: A, before: newest, limit: 1 })).data.raffleOrders, full.raffleOrders.slice(1, 2));
  assert.is((await history(w, { userId: u, activityId: A })).data.raffleOrders.length, 6, 'default limit 20');
});

test('bad history requests: 0002 with the reason; without replyTo dead-lettered', async () => {
  for (const [payload, word] of [
    [{ userId: 'u', activityId: A, limit: 0 }, 'limit'],
    [{ userId: 'u', activityId: A, limit: 101 }, 'limit'],
    [{ userId: 'u', activityId: A, before: 'soon' }, 'before'],
    [{ userId: 'u' }, 'activityId'],
  ] as const) {
    const r = await history(w, payload);
    assert.is(r.code, '0002');
    assert.match(r.info, word);
  }
  const id = await w.client.publish(QUEUES.accountHistory, { userId: 'u', activityId: A });
  const dl = await w.client.waitDeadLetter((d) => d.props.messageId === id);
  assert.match(String(dl.props.headers?.['x-error']), 'NO_REPLY_TO');
  await waitFor(async () => (await history(w, { userId: 'u', activityId: A })).code === '0000', 5_000, 'the worker answers');
});

test.run();
