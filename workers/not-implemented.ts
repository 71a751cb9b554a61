import { PermanentError } from '../infra/errors';
import type { Context } from './runtime';

/** Until a worker's issue lands its queues are consumed and every message dead-lettered with the reason. */
export async function consumeNotImplemented(ctx: Context, queues: readonly string[]): Promise<void> {
  for (const q of queues) {
    await ctx.broker.consume(q, async () => {
      throw new PermanentError('NOT_IMPLEMENTED', `${q} is not implemented yet`);
    });
  }
}
