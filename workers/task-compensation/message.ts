import { QUEUES } from '../../infra/topology';

export const REPLAY_QUEUE = QUEUES.taskReplay;

/** `{taskIds: [..]}` (message ids, `SHARD:ID` or task ids; see infra/outbox.ts replayTasks) or `{state: "fail"|"dead"}`. */
export { parseReplayRequest as parseReplay } from '../../infra/contract/requests';
