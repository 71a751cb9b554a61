import { requestReply, type Handler } from '../../infra/amqp';
import { success, type Deps } from './handle';
import { readHistory } from './history-store';
import { ACCOUNT_HISTORY_QUEUE, parseHistoryRequest } from './message';

/** `activity.account.history` (request/reply): the user's recharge and raffle orders of an activity, newest first, paged by `before`. */
export const accountHistoryHandler = (d: Deps): Handler =>
  requestReply(d.broker, {
    queue: ACCOUNT_HISTORY_QUEUE,
    parse: parseHistoryRequest,
    replyRequired: true,
    async run(req) {
      const { ds, suffix } = d.dbs.forUser(req.userId);
      return success(await readHistory(ds, suffix, req));
    },
  });
