import type { ConsumeMessage } from 'amqplib';
import { invalid, readBody } from '../../infra/envelope';
import type { ReplaySelector } from '../../infra/relay';
import { QUEUES } from '../../infra/topology';

export const REPLAY_QUEUE = QUEUES.taskReplay;
const MAX_IDS = 1_000;

/** `{taskIds: [..]}` (message ids, `SHARD:ID` or task ids; see replayTasks) or `{state: "fail"|"dead"}`. */
export function parseReplay(msg: ConsumeMessage): ReplaySelector {
  const { data } = readBody(msg);
  const hasIds = 'taskIds' in data;
  const hasState = 'state' in data;
  if (hasIds === hasState) throw invalid('give exactly one of taskIds or state');
  if (hasState) {
    if (data.state !== 'fail' && data.state !== 'dead') throw invalid('state must be "fail" or "dead"');
    return { state: data.state };
  }
  const ids = data.taskIds;
  if (!Array.isArray(ids) || !ids.length) throw invalid('taskIds must be a non-empty array');
  if (ids.length > MAX_IDS) throw invalid(`taskIds has over ${MAX_IDS} entries`);
  for (const id of ids) {
    const ok = (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) || (typeof id === 'string' && id.length > 0 && id.length <= 128);
    if (!ok) throw invalid('each of taskIds must be a positive whole number or a non-empty string of up to 128 characters');
  }
  return { ids: ids as Array<string | number> };
}
