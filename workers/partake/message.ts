import { QUEUES } from '../../infra/topology';

/** Queues of contract §5 served by the partake worker; payloads in infra/contract/requests.ts. */
export const PARTAKE_QUEUE = QUEUES.partake;
export const ACCOUNT_QUERY_QUEUE = QUEUES.accountQuery;
export const ACCOUNT_HISTORY_QUEUE = QUEUES.accountHistory;
export const RAFFLE_ORDER_USED_QUEUE = QUEUES.raffleOrderUsed;
export const RAFFLE_ORDER_CANCEL_QUEUE = QUEUES.raffleOrderCancel;

export {
  HISTORY_LIMIT,
  parseAccountRequest,
  parsePartakeRequest,
  parseHistoryRequest,
  parseOrderRequest,
  type AccountRequest,
  type PartakeRequest,
  type HistoryRequest,
  type OrderRequest,
} from '../../infra/contract/requests';
