import { catalogReader } from '../../infra/catalog-read';
import type { Start } from '../../infra/context';
import { accountQueryHandler, partakeHandler, raffleOrderUsedHandler, type Deps } from './handle';
import { ACCOUNT_QUERY_QUEUE, PARTAKE_QUEUE, RAFFLE_ORDER_USED_QUEUE } from './message';

export const start: Start = async (ctx) => {
  const d: Deps = { ctx, catalog: catalogReader(ctx.dbs.global), clock: () => new Date() };
  await ctx.broker.consume(PARTAKE_QUEUE, partakeHandler(d));
  await ctx.broker.consume(ACCOUNT_QUERY_QUEUE, accountQueryHandler(d));
  await ctx.broker.consume(RAFFLE_ORDER_USED_QUEUE, raffleOrderUsedHandler(d));
};
