import type { ConsumeMessage } from 'amqplib';
import { replayTasks } from '../../infra/outbox';
import type { Topic } from '../../infra/topology';
import type { Context } from '../../infra/context';
import { parseReplay } from './message';

/** Re-queues the selected tasks, then publishes them at once (the cron relay covers any failure). */
export async function handleReplay(ctx: Context, msg: ConsumeMessage): Promise<void> {
  const sel = parseReplay(msg);
  const replayed = await replayTasks(ctx.dbs.shards, sel);
  ctx.log.info({ selector: sel, replayed: replayed.length, messageIds: replayed.slice(0, 20).map((t) => t.messageId) }, 'tasks replayed');
  for (const s of ctx.dbs.shards) {
    const mine = replayed.filter((t) => t.shard === s.shard).map((t) => ({ id: t.id, messageId: t.messageId, topic: t.topic as Topic }));
    await ctx.relay.publishNow(s.ds, mine);
  }
}
