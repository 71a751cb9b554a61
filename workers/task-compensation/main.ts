import cron from 'node-cron';
import type { Start } from '../../infra/context';
import { handleReplay } from './handle';
import { REPLAY_QUEUE } from './message';

/** The outbox relay (every second, never overlapping itself) and the replay consumer. */
export const start: Start = async (ctx) => {
  await ctx.broker.consume(REPLAY_QUEUE, (msg) => handleReplay(ctx, msg));
  let round: Promise<unknown> | undefined;
  const job = cron.schedule('* * * * * *', () => (round = ctx.relay.relayAll(ctx.dbs.shards)), {
    name: `outbox-relay:${ctx.name}`,
    noOverlap: true,
    logger: {
      info: (m) => ctx.log.debug({ cron: m }, 'cron'),
      warn: (m) => ctx.log.debug({ cron: m }, 'cron'),
      error: (m, err) => ctx.log.error({ err: err ?? m }, 'relay job failed'),
      debug: (m) => ctx.log.trace({ cron: String(m) }, 'cron'),
    },
  });
  ctx.log.info({ settings: ctx.config.outbox }, 'outbox relay scheduled');
  return async () => {
    await job.stop();
    await round; // a round in flight finishes its marking before the connections close
    await job.destroy();
  };
};
