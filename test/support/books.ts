import type { Config } from '../../infra/config';
import { judge } from './books/judge';
import { readSnapshot } from './books/read';
import type { Books, History } from './books/types';

/**
 * The books checker of the fault suite (test/support/books/): given what the test did and saw,
 * reads every shard, the global database and Redis, and says what was lost, what was doubled and
 * which promise of contract §6 is broken. New scenario files call `checkBooks` (or `World.check`).
 */
export * from './books/types';
export { judge, describe } from './books/judge';
export { readSnapshot } from './books/read';

export async function checkBooks(config: Config, history: History): Promise<Books> {
  return judge(history, await readSnapshot(config), { shards: config.shardUrls.length, tables: config.shardTableCount, timeZone: config.timeZone });
}
