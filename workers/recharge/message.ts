import { QUEUES } from '../../infra/topology';

/** Payloads and their rules (ids stored verbatim, 1–128 code points) in infra/contract/requests.ts. */
export const RECHARGE_QUEUE = QUEUES.recharge;
export const BEHAVIOR_QUEUE = QUEUES.behavior;

export {
  parseRechargeRequest as parseRecharge,
  parseBehaviorRequest as parseBehavior,
  type BehaviorRequest as BehaviorMessage,
} from '../../infra/contract/requests';
