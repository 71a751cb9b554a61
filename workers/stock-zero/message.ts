import type { ConsumeMessage } from 'amqplib';
import { field, readBody } from '../../infra/envelope';
import { QUEUES } from '../../infra/topology';

export const STOCK_ZERO_QUEUE = QUEUES.stockZero;

export type StockZero = Readonly<{ messageId: string | undefined; sku: number }>;

/** `{sku}` (the `sku.stock_zero` event); the message id deduplicates redeliveries. */
export function parseStockZero(msg: ConsumeMessage): StockZero {
  const { messageId, data } = readBody(msg);
  return { messageId, sku: field.id(data, 'sku') };
}
