import type { ConsumeMessage } from 'amqplib';
import type { Deps } from './handle';
import { readHistory } from './history-store';
import { ACCOUNT_HISTORY_QUEUE, parseHistoryRequest } from './message';
import { serve, success } from './serve';

/** `activity.account.history` (request/reply): the user's recharge and raffle orders of an activity, newest first, paged by `before`. */
export function handleAccountHistory(d: Deps, msg: ConsumeMessage): Promise<void> {
  return serve(d, msg, ACCOUNT_HISTORY_QUEUE, parseHistoryRequest, async (req) => {
    const { ds, suffix } = d.dbs.forUser(req.userId);
    return success(await readHistory(ds, suffix, req));
  }, true);
}
