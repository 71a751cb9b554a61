import type { DataSource } from 'typeorm';
import type { Broker } from './amqp';
import type { Logger } from './log';
import type { EnqueuedTask } from './outbox';

/**
 * Fast path: after the transaction that wrote `tasks` commits, publish them at once. Never throws:
 * whatever is not published here is picked up by the cron relay of the task-compensation worker.
 * (Stub until the relay lands: the cron relay does all the publishing.)
 */
export async function publishNow(_broker: Broker, _ds: DataSource, _tasks: readonly EnqueuedTask[], _log: Logger): Promise<void> {}
