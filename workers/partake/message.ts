import { QUEUES } from '../../infra/topology';

/** Request/reply queues of contract §5 served by the partake worker; payloads in infra/contract/requests.ts. */
export const PARTAKE_QUEUE = QUEUES.partake;
export const ACCOUNT_QUERY_QUEUE = QUEUES.accountQuery;
export const RAFFLE_ORDER_USED_QUEUE = QUEUES.raffleOrderUsed;

export { parseAccountRequest, parseUseRequest, type AccountRequest, type OrderRequest as UseRequest } from '../../infra/contract/requests';
