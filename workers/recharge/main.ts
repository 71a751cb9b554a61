import { catalogReader } from '../../infra/catalog-read';
import { outboxPort } from '../outbox-port';
import type { Start } from '../../infra/context';
import { handleBehavior, handleRecharge, type Deps } from './handle';
import { BEHAVIOR_QUEUE, RECHARGE_QUEUE } from './message';
import { startStockJobs } from './stock-jobs';

export const start: Start = async (ctx) => {
  const { log, broker, dbs, redis, clock, newOrderId } = ctx;
  const outbox = outboxPort(ctx.relay);
  const deps: Deps = { log, outbox, dbs, redis, clock, newOrderId, catalog: catalogReader(dbs.global), timeZone: ctx.config.timeZone };
  const stopJobs = startStockJobs(dbs, redis, log, ctx.config.stockReaper);
  await broker.consume(RECHARGE_QUEUE, (msg) => handleRecharge(deps, msg));
  await broker.consume(BEHAVIOR_QUEUE, (msg) => handleBehavior(deps, msg));
  return stopJobs;
};
