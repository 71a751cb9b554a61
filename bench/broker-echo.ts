import amqplib, { type ConsumeMessage } from 'amqplib';

/**
 * The broker ceiling's worker: the messaging a pipeline worker does, with no database. Run as its
 * own process (like a worker) by the ceilings scenario. Same shape as infra/amqp.ts: quorum input
 * queues, one consumer channel per queue with the same prefetch, a confirm channel for publishing,
 * ack after the publish is confirmed.
 *   bench.echo  request/reply: reply to replyTo (mandatory, confirmed), then ack
 *   bench.sink  ack only (the `raffle-order.used` analogue of the partake loop)
 *   bench.work  publish one event to `bench.events` (confirmed), then ack (the recharge analogue)
 */
export const ECHO_QUEUE = 'bench.echo';
export const SINK_QUEUE = 'bench.sink';
export const WORK_QUEUE = 'bench.work';
export const BENCH_EVENTS = 'bench.events';

async function main(): Promise<void> {
  const url = process.env.AMQP_URL!;
  const prefetch = Number(process.env.PREFETCH ?? 32);
  // TCP_NODELAY, as the pipeline's worker connection should have (see docs/BENCHMARKS.md, hot path).
  const conn = await amqplib.connect(url, { noDelay: process.env.BENCH_NODELAY !== '0' });
  conn.on('error', (err) => process.stderr.write(`echo: connection error ${err}\n`));
  const pub = await conn.createConfirmChannel();
  const admin = await conn.createChannel();
  await admin.assertExchange(BENCH_EVENTS, 'topic', { durable: true });
  for (const q of [ECHO_QUEUE, SINK_QUEUE, WORK_QUEUE]) {
    await admin.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 10 } });
  }
  const confirmed = (exchange: string, key: string, body: Buffer, props: amqplib.Options.Publish) =>
    new Promise<void>((resolve, reject) => pub.publish(exchange, key, body, props, (err) => (err ? reject(err) : resolve())));

  const consume = async (queue: string, handle: (m: ConsumeMessage) => Promise<void>) => {
    const ch = await conn.createChannel();
    await ch.prefetch(prefetch);
    await ch.consume(queue, (m) => {
      if (!m) return;
      // The same parse a worker does, so the JSON cost is in the ceiling too.
      JSON.parse(m.content.toString('utf8'));
      handle(m).then(
        () => ch.ack(m),
        (err) => (process.stderr.write(`echo: ${err}\n`), ch.nack(m, false, true)),
      );
    });
  };
  await consume(ECHO_QUEUE, (m) =>
    confirmed('', String(m.properties.replyTo), Buffer.from(JSON.stringify({ code: '0000', info: 'success', data: { echo: true } })), {
      correlationId: m.properties.correlationId,
      contentType: 'application/json',
      mandatory: true,
    }),
  );
  await consume(SINK_QUEUE, async () => undefined);
  await consume(WORK_QUEUE, (m) =>
    confirmed(BENCH_EVENTS, 'work.done', Buffer.from(JSON.stringify({ id: m.properties.messageId, timestamp: Date.now(), data: {} })), {
      persistent: true,
      mandatory: true,
      messageId: String(m.properties.messageId),
      contentType: 'application/json',
    }),
  );
  process.stdout.write('ready\n');
  const stop = () => void conn.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && /broker-echo\.ts$/.test(process.argv[1])) {
  main().catch((err) => {
    process.stderr.write(`echo: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}
