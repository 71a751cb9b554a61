import cron from 'node-cron';
import type { Start } from '../../infra/context';
import { handleReplay } from './handle';
import { REPLAY_QUEUE } from './message';
import { purgeRound } from './retention';

/** The outbox relay (every second, never overlapping itself), retention (every minute) and the replay consumer. */
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
  let purging: Promise<unknown> | undefined;
  const retention = cron.schedule('30 * * * * *', () => (purging = purgeRound(ctx.dbs, ctx.config.outbox.retentionSeconds, ctx.log)), {
    name: `retention:${ctx.name}`,
    noOverlap: true,
    logger: { info: () => undefined, warn: () => undefined, debug: () => undefined, error: (m, err) => ctx.log.error({ err: err ?? m }, 'retention job failed') },
  });
  ctx.log.info({ settings: ctx.config.outbox }, 'outbox relay and retention scheduled');
  return async () => {
    await Promise.all([job.stop(), retention.stop()]);
    await Promise.all([round, purging]); // a round in flight finishes before the connections close
    await Promise.all([job.destroy(), retention.destroy()]);
  };
};
