import type { Start } from '../../infra/context';
import { handleStockZero } from './handle';
import { STOCK_ZERO_QUEUE } from './message';

export const start: Start = async (ctx) => {
  await ctx.broker.consume(STOCK_ZERO_QUEUE, (msg) => handleStockZero(ctx, msg));
};
