import { catalogReader } from '../../infra/catalog-read';
import type { Start } from '../../infra/context';
import { handleBehavior, handleRecharge, type Deps } from './handle';
import { BEHAVIOR_QUEUE, RECHARGE_QUEUE } from './message';
import { startStockJobs } from './stock-jobs';

export const start: Start = async (ctx) => {
  const deps: Deps = { ...ctx, catalog: catalogReader(ctx.dbs.global) };
  const stopJobs = startStockJobs(ctx.dbs, ctx.redis, ctx.log);
  await ctx.broker.consume(RECHARGE_QUEUE, (msg) => handleRecharge(deps, msg));
  await ctx.broker.consume(BEHAVIOR_QUEUE, (msg) => handleBehavior(deps, msg));
  return stopJobs;
};
