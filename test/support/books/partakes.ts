import { testDay, testMonth } from '../calendar';
import { catalogRefusal, type CatalogFacts } from './catalog';
import { groupBy, key, type Findings, type History, type Layout, type PartakeInput, type RaffleRow, type Snapshot } from './types';

/**
 * Partake calls: an effect is a `0000` reply whose order is in the database, for that user; retries
 * of one call agree; a refusal is true (catalog, or the quota really used up); no order nobody got;
 * at most one open order per user and activity; the load's plan of successes was met.
 */
export function checkPartakes(f: Findings, h: History, s: Snapshot, cat: CatalogFacts, layout: Layout): void {
  if (!h.partakes) return;
  const raffleById = new Map(s.raffle.map((r) => [r.order_id, r]));
  const replied = new Set<string>();
  let ok = 0;
  for (const p of h.partakes) {
    const ids = new Set(p.replies.filter((r) => r.code === '0000').map((r) => String(r.orderId)));
    if (!p.replies.length) f.add('partake-no-reply', `a partake of ${p.userId} never got a reply`, { lost: 1 });
    if (ids.size > 1) f.add('partake-retry-double', `one partake call of ${p.userId} got ${ids.size} different orders: ${[...ids].join(', ')}`, { doubled: ids.size - 1 });
    let good = ids.size > 0;
    for (const id of ids) {
      replied.add(id);
      const row = raffleById.get(id);
      if (!row) (good = false), f.add('partake-lost', `partake reply order ${id} of ${p.userId} is not in the database`, { lost: 1 });
      else if (row.user_id !== p.userId) (good = false), f.add('partake-wrong-user', `order ${id} belongs to ${row.user_id}, replied to ${p.userId}`);
    }
    if (good) ok++, f.books.effects++;
    if (!ids.size && p.replies.length) checkRefusal(f, p, s, cat, layout);
  }
  if (h.partakes.length && !ok) f.add('partakes-all-failed', `none of ${h.partakes.length} partake calls succeeded, e.g. ${JSON.stringify(h.partakes[0]!.replies.slice(0, 3))}`);
  if (h.expectPartakes !== undefined && ok < h.expectPartakes) f.add('partakes-short', `${ok} partake calls succeeded, the load planned ${h.expectPartakes} (a user stopped, or calls failed)`);
  for (const r of s.raffle) if (!replied.has(r.order_id)) f.add('partake-orphan', `raffle order ${r.order_id} of ${r.user_id} was never returned to a caller`, { doubled: 1 });
  for (const [k, rs] of groupBy(
    s.raffle.filter((r) => r.order_state === 'create'),
    (r) => key(r.user_id, r.activity_id),
  )) {
    if (rs.length > 1) f.add('two-open', `${k.replace('\u0000', '/')} has ${rs.length} raffle orders in state create`, { doubled: rs.length - 1 });
  }
}

/**
 * A partake that got no order: every answer must be a refusal that is true at the end of the run
 * (catalog codes as the catalog says; 006/007/008 only with that allowance at 0); 0001 never is.
 */
function checkRefusal(f: Findings, p: PartakeInput, s: Snapshot, cat: CatalogFacts, layout: Layout): void {
  const at = p.sentAt ?? Date.now();
  const account = s.accounts.find((a) => a.user_id === p.userId && Number(a.activity_id) === p.activityId);
  for (const r of p.replies) {
    const said = catalogRefusal(cat.activities.get(p.activityId), at);
    const who = `partake of ${p.userId} answered ${r.code}`;
    if (said || ['ERR_BIZ_003', 'ERR_BIZ_004', 'ERR_BIZ_010'].includes(r.code)) {
      if (r.code !== said) f.add('false-refusal', `${who}: the catalog says ${said ?? 'the activity is open'}`);
      continue;
    }
    const day = s.days.find((d) => d.user_id === p.userId && Number(d.activity_id) === p.activityId && d.day === testDay(layout.timeZone, at));
    const month = s.months.find((m) => m.user_id === p.userId && Number(m.activity_id) === p.activityId && m.month === testMonth(layout.timeZone, at));
    const used =
      r.code === 'ERR_BIZ_006'
        ? !account || account.total_count_surplus === 0
        : r.code === 'ERR_BIZ_007'
          ? month?.month_count_surplus === 0
          : r.code === 'ERR_BIZ_008'
            ? day?.day_count_surplus === 0
            : false;
    if (!used)
      f.add(
        'false-refusal',
        `${who} but that allowance is not used up (account ${JSON.stringify(account ? { total: account.total_count_surplus } : null)}, month ${month?.month_count_surplus}, day ${day?.day_count_surplus})`,
      );
  }
}

/**
 * `raffle-order.used` and `.cancel`: every use the test sent flips its order once (one `0000` across
 * all replies; `ERR_BIZ_009` only after an attempt that may have applied, or when the order was
 * cancelled); a use and a cancel never both win; and the final `order_state` of every order is what
 * the callers were told: used where a use won, cancelled where a cancel won or expiry's
 * `raffle-order.cancelled` was seen, else open.
 */
export function checkUses(f: Findings, h: History, s: Snapshot): void {
  if (!h.partakes && !h.uses) return;
  const raffleById = new Map(s.raffle.map((r) => [r.order_id, r]));
  const usesPer = groupBy(h.uses ?? [], (u) => u.orderId);
  const cancelsPer = groupBy(h.cancels ?? [], (c) => c.orderId);
  const cancelled = new Set(h.events.filter((e) => e.key === 'raffle-order.cancelled').map((e) => String(e.data?.orderId)));
  for (const [orderId, uses] of usesPer) {
    const row = raffleById.get(orderId);
    const replies = uses.flatMap((u) => u.replies);
    const who = `use of order ${orderId} (${uses[0]!.userId})`;
    if (!row) f.add('use-unknown-order', `${who}: no such order in the database`);
    else if (row.user_id !== uses[0]!.userId) f.add('use-wrong-user', `${who}: the order belongs to ${row.user_id}`);
    for (const u of uses) if (!u.replies.length) f.add('use-no-reply', `${who} never got a reply`, { lost: 1 });
    const flips = replies.filter((r) => r.code === '0000').length;
    const bad = replies.filter((r) => r.code !== '0000' && r.code !== 'ERR_BIZ_009');
    if (flips > 1) f.add('use-double', `${who}: ${flips} replies said 0000, the order flipped more than once`, { doubled: flips - 1 });
    if (bad.length) f.add('use-bad-reply', `${who}: answered ${bad.map((r) => r.code).join(',')}`);
    const cancelWon = !!row && row.order_state === 'cancel' && cancelled.has(orderId) && !!h.cancelsAllowed;
    if (!flips && uses.length === 1 && uses[0]!.attempts <= 1 && replies.some((r) => r.code === 'ERR_BIZ_009') && !cancelWon)
      f.add('use-false-refusal', `${who}: ERR_BIZ_009 on its only attempt, yet no other use was sent and the order was not cancelled`);
    if (flips && cancelsPer.get(orderId)?.some((c) => c.replies.some((r) => r.code === '0000')))
      f.add('cancel-and-use', `order ${orderId}: both a use and a cancel were answered 0000`, { doubled: 1 });
    const want = flips || !cancelWon ? 'used' : 'cancel'; // a 009 after a timed-out attempt: that attempt applied
    if (row && row.order_state === want && replies.length) f.books.effects += uses.length;
    if (row && row.order_state !== want) f.add('order-state', `order ${orderId}: the test's use was answered ${replies.map((r) => r.code).join(',') || 'nothing'}, the shard says ${row.order_state}`);
  }
  for (const [orderId, cs] of cancelsPer) {
    const row = raffleById.get(orderId);
    const won = cs.some((c) => c.replies.some((r) => r.code === '0000'));
    const bad = cs.flatMap((c) => c.replies).filter((r) => r.code !== '0000' && r.code !== 'ERR_BIZ_009');
    if (bad.length) f.add('cancel-bad-reply', `cancel of order ${orderId}: answered ${bad.map((r) => r.code).join(',')}`);
    if (won && row && row.order_state !== 'cancel') f.add('order-state', `order ${orderId}: a cancel was answered 0000, the shard says ${row.order_state}`);
    if (won && !cancelled.has(orderId)) f.add('cancel-no-event', `order ${orderId}: a cancel was answered 0000 but no raffle-order.cancelled event arrived`, { lost: 1 });
  }
  for (const r of s.raffle) if (!usesPer.has(r.order_id) && !cancelsPer.has(r.order_id)) checkUnused(f, h, r, cancelled);
}
function checkUnused(f: Findings, h: History, r: RaffleRow, cancelled: Set<string>): void {
  if (r.order_state === 'create' || (r.order_state === 'cancel' && h.cancelsAllowed && cancelled.has(r.order_id))) return;
  f.add('order-state', `order ${r.order_id} of ${r.user_id}: no use was sent${cancelled.has(r.order_id) ? '' : ' and no cancel event seen'}, the shard says ${r.order_state}`);
}
