import { QUEUES } from '../../infra/topology';

export const STOCK_ZERO_QUEUE = QUEUES.stockZero;

export type StockZero = Readonly<{ messageId: string | undefined; sku: number }>;

/** `{sku}` (the `sku.stock_zero` event); the message id deduplicates redeliveries. */
export { parseStockZeroRequest as parseStockZero } from '../../infra/contract/requests';
