import type { ConsumeMessage } from 'amqplib';
import { sql, transaction } from '../../infra/db';
import { firstDelivery } from '../../infra/inbox';
import { dropPendingSync } from '../../infra/stock';
import type { Context } from '../../infra/context';
import { parseStockZero } from './message';

/** DB surplus of the SKU = 0 and its pending sync dropped; a redelivered event changes nothing. */
export async function handleStockZero(ctx: Context, msg: ConsumeMessage): Promise<void> {
  const { messageId, sku } = parseStockZero(msg);
  const applied = await transaction(ctx.dbs.global, async (tx) => {
    // Without a message id there is nothing to deduplicate by; setting zero twice is harmless.
    if (messageId && !(await firstDelivery(tx, 'stock-zero', messageId))) return false;
    await sql(tx, 'UPDATE raffle_activity_sku SET stock_count_surplus = 0, update_time = now() WHERE sku = $1 AND stock_count >= 0', [sku]);
    return true;
  });
  if (!applied) return ctx.log.info({ sku, messageId }, 'stock-zero already applied');
  await dropPendingSync(ctx.redis, sku);
  ctx.log.info({ sku, messageId }, 'sku stock surplus set to zero');
}
