import { catalogReader } from '../../infra/catalog-read';
import type { Start } from '../runtime';
import { handleAccountQuery, handlePartake, handleRaffleOrderUsed, type Deps } from './handle';
import { ACCOUNT_QUERY_QUEUE, PARTAKE_QUEUE, RAFFLE_ORDER_USED_QUEUE } from './message';

export const start: Start = async (ctx) => {
  const d: Deps = { ctx, catalog: catalogReader(ctx.dbs.global), clock: () => new Date() };
  await ctx.broker.consume(PARTAKE_QUEUE, (msg) => handlePartake(d, msg));
  await ctx.broker.consume(ACCOUNT_QUERY_QUEUE, (msg) => handleAccountQuery(d, msg));
  await ctx.broker.consume(RAFFLE_ORDER_USED_QUEUE, (msg) => handleRaffleOrderUsed(d, msg));
};
