import { route } from '../../../domain/router';
import { catalogRefusal, type CatalogFacts } from './catalog';
import { groupBy, key, shown, type Findings, type History, type Layout, type RechargeInput, type Snapshot } from './types';

/** How much later than a sold-out refusal (service clock) the order that sold the last unit may be stamped. */
export const SOLD_OUT_SLACK_MS = 30_000;

/** Every recharge sent ends as exactly one order or one rejection, in the right shard; nothing else is there. */
export function checkRecharges(f: Findings, h: History, s: Snapshot, layout: Layout): void {
  const sent = new Map<string, RechargeInput>();
  for (const r of h.recharges ?? []) sent.set(key(r.userId, r.outBusinessNo), r);
  const orders = groupBy(s.orders, (o) => key(o.user_id, o.out_business_no));
  const rejections = groupBy(s.rejections, (r) => key(r.user_id, r.out_business_no));
  for (const [k, r] of sent) {
    const os = orders.get(k) ?? [];
    const rs = rejections.get(k) ?? [];
    const n = os.length + rs.length;
    if (n === 1) f.books.effects++;
    if (n === 0) f.add('lost-recharge', `recharge ${r.userId}/${r.outBusinessNo} (sku ${r.sku}) has neither an order nor a rejection`, { lost: 1 });
    if (n > 1) f.books.effects++, f.add('double-recharge', `recharge ${r.userId}/${r.outBusinessNo} has ${os.length} orders and ${rs.length} rejections`, { doubled: n - 1 });
    for (const o of os) if (Number(o.sku) !== r.sku) f.add('wrong-sku', `order ${o.order_id} of ${shown(k)} is for sku ${o.sku}, the test sent sku ${r.sku}`);
  }
  for (const [k, os] of orders) if (!sent.has(k)) f.add('stray-order', `order(s) ${os.map((o) => o.order_id).join(',')} for ${shown(k)} that the test never sent`, { doubled: os.length });
  for (const [k, rs] of rejections) if (!sent.has(k)) f.add('stray-rejection', `rejection(s) for ${shown(k)} (${rs.map((r) => r.code).join(',')}) that the test never sent`);
  for (const row of [...s.orders, ...s.rejections, ...s.raffle]) {
    const want = route(row.user_id, layout.shards, layout.tables);
    if (row.shard !== want.shard || row.suffix !== want.suffix) f.add('placement', `a row of ${row.user_id} in shard ${row.shard} _${row.suffix}, the router says shard ${want.shard} _${want.suffix}`);
  }
}

/**
 * A rejection is correct only when it is true: ERR_BIZ_005 only for a limited SKU whose committed
 * orders had reached its stock (by the refusal's time, give or take `SOLD_OUT_SLACK_MS`); the other
 * codes only where the test's catalog says so.
 */
export function checkRejections(f: Findings, s: Snapshot, cat: CatalogFacts): void {
  const ordersBySku = groupBy(s.orders, (o) => String(Number(o.sku)));
  for (const r of s.rejections) {
    const sku = cat.skus.get(Number(r.sku));
    const who = `rejection ${r.code} of ${r.user_id}/${r.out_business_no} (sku ${r.sku})`;
    const at = r.create_time.getTime();
    const said = sku ? catalogRefusal(sku.activity, at) : 'ERR_BIZ_010';
    if (r.code !== 'ERR_BIZ_005') {
      if (r.code !== said) f.add('false-rejection', `${who}: the catalog says ${said ?? 'the order is allowed'}`);
      continue;
    }
    if (said) f.add('false-rejection', `${who}: the catalog says ${said}, not sold out`);
    else if (!sku || sku.stock < 0) f.add('false-sold-out', `${who}: the SKU is unlimited`);
    else {
      const sold = ordersBySku.get(String(sku.sku)) ?? [];
      const soldBy = sold.filter((o) => o.order_time.getTime() <= at + SOLD_OUT_SLACK_MS).length;
      if (soldBy < sku.stock) f.add('false-sold-out', `${who} at ${r.create_time.toISOString()}: only ${soldBy} of stock ${sku.stock} sold by then (${sold.length} in the end)`);
    }
  }
}

/**
 * Stock against the test's own ledger (the `recharge.completed` events it saw, the recharges it
 * sent, the stock it loaded): a limited SKU sells min(stock, distinct requests); the live Redis
 * counter and `stock_count_surplus` are stock − sold. A missing counter is a finding.
 */
export function checkStock(f: Findings, h: History, s: Snapshot, cat: CatalogFacts): void {
  const seen = new Map<number, Set<string>>();
  for (const e of h.events) if (e.key === 'recharge.completed') seen.set(Number(e.data?.sku), (seen.get(Number(e.data?.sku)) ?? new Set()).add(String(e.data?.orderId)));
  const requested = new Map<number, Set<string>>();
  for (const r of h.recharges ?? []) requested.set(r.sku, (requested.get(r.sku) ?? new Set()).add(key(r.userId, r.outBusinessNo)));
  const dbSku = new Map(s.skus.map((x) => [Number(x.sku), x]));
  for (const sku of cat.skus.values()) {
    if (sku.stock < 0) continue;
    const sold = seen.get(sku.sku)?.size ?? 0;
    const want = Math.min(sku.stock, requested.get(sku.sku)?.size ?? 0);
    if (sold > sku.stock) f.add('oversold', `sku ${sku.sku}: ${sold} orders (recharge.completed seen) for stock ${sku.stock}`, { doubled: sold - sku.stock });
    else if (sold < want)
      f.add('undersold', `sku ${sku.sku}: ${sold} orders (recharge.completed seen) for stock ${sku.stock} and ${requested.get(sku.sku)?.size ?? 0} distinct requests; min is ${want}`);
    const left = Math.max(0, sku.stock - sold);
    const row = dbSku.get(sku.sku);
    if (!row) f.add('sku-missing', `sku ${sku.sku} is not in the global database`);
    else {
      if (Number(row.stock_count) !== sku.stock) f.add('sku-stock', `sku ${sku.sku}: stock_count ${row.stock_count} ≠ the loaded stock ${sku.stock}`);
      if (Number(row.stock_count_surplus) !== left) f.add('sku-surplus', `sku ${sku.sku}: stock_count_surplus ${row.stock_count_surplus} ≠ stock ${sku.stock} − ${sold} sold (test's ledger)`);
    }
    const live = s.redisStock.get(sku.sku);
    if (live === undefined) f.add('redis-counter-missing', `sku ${sku.sku}: no Redis counter (stock ${sku.stock}, ${sold} sold)`);
    else if (live !== left) f.add('redis-stock', `sku ${sku.sku}: Redis counter ${live} ≠ stock ${sku.stock} − ${sold} sold (test's ledger)`);
  }
}
