import { catalogReader } from '../../infra/catalog-read';
import { outboxPort } from '../outbox-port';
import type { Start } from '../runtime';
import { startExpiry } from './expiry';
import { handleAccountQuery, handlePartake, type Deps } from './handle';
import { handleAccountHistory } from './history';
import { ACCOUNT_HISTORY_QUEUE, ACCOUNT_QUERY_QUEUE, PARTAKE_QUEUE, RAFFLE_ORDER_CANCEL_QUEUE, RAFFLE_ORDER_USED_QUEUE } from './message';
import { handleRaffleOrderCancel, handleRaffleOrderUsed } from './raffle-order';

export const start: Start = async (ctx) => {
  const { log, broker, dbs, clock, newOrderId } = ctx;
  const d: Deps = { log, broker, outbox: outboxPort(broker, log), dbs, clock, newOrderId, catalog: catalogReader(dbs.global), timeZone: ctx.config.timeZone };
  await broker.consume(PARTAKE_QUEUE, (msg) => handlePartake(d, msg));
  await broker.consume(ACCOUNT_QUERY_QUEUE, (msg) => handleAccountQuery(d, msg));
  await broker.consume(ACCOUNT_HISTORY_QUEUE, (msg) => handleAccountHistory(d, msg));
  await broker.consume(RAFFLE_ORDER_USED_QUEUE, (msg) => handleRaffleOrderUsed(d, msg));
  await broker.consume(RAFFLE_ORDER_CANCEL_QUEUE, (msg) => handleRaffleOrderCancel(d, msg));
  // The partake worker owns raffle orders, so it also expires them.
  return startExpiry(d);
};
