import { catalogReader } from '../../infra/catalog-read';
import type { Start } from '../../infra/context';
import { outboxPort } from '../outbox-port';
import { startExpiry } from './expiry';
import { accountQueryHandler, partakeHandler, type Deps } from './handle';
import { accountHistoryHandler } from './history';
import { ACCOUNT_HISTORY_QUEUE, ACCOUNT_QUERY_QUEUE, PARTAKE_QUEUE, RAFFLE_ORDER_CANCEL_QUEUE, RAFFLE_ORDER_USED_QUEUE } from './message';
import { raffleOrderCancelHandler, raffleOrderUsedHandler } from './raffle-order';

export const start: Start = async (ctx) => {
  const { log, broker, dbs, clock, newOrderId } = ctx;
  const d: Deps = { log, broker, outbox: outboxPort(ctx.relay), dbs, clock, newOrderId, catalog: catalogReader(dbs.global), timeZone: ctx.config.timeZone };
  await broker.consume(PARTAKE_QUEUE, partakeHandler(d));
  await broker.consume(ACCOUNT_QUERY_QUEUE, accountQueryHandler(d));
  await broker.consume(ACCOUNT_HISTORY_QUEUE, accountHistoryHandler(d));
  await broker.consume(RAFFLE_ORDER_USED_QUEUE, raffleOrderUsedHandler(d));
  await broker.consume(RAFFLE_ORDER_CANCEL_QUEUE, raffleOrderCancelHandler(d));
  // The partake worker owns raffle orders, so it also expires them.
  return startExpiry(d);
};
