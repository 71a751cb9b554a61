import amqplib from 'amqplib';
import { privateWorld } from './private';
import { killRabbitNode, quorumLeader } from './world';
import { sleep, until } from './layout';

/**
 * How long a quorum-queue consumer waits for deliveries after the node leading its queue is killed
 * (-9), by when it subscribes again on a surviving node: at once (200 ms, as the workers' reconnect)
 * or after a pause. `npx tsx test/cluster/rabbit-gap.ts [pauseMs…]` (brings up 3 nodes of its own).
 */
const pauses = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n >= 0);
const PAUSES = pauses.length ? pauses : [200, 3_000];
const cw = await privateWorld(['rabbitmq'], (s) => process.stdout.write(`# ${s}\n`));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cw.down().finally(() => process.exit(130)));
try {
  const urls = cw.env.AMQP_URL!.split(',');
  const leaderConn = await amqplib.connect(urls[0]!);
  leaderConn.on('error', () => undefined); // its node is the one killed
  const ch0 = await leaderConn.createChannel();
  const queues = PAUSES.map((p) => `gap.${p}`);
  for (const q of queues) await ch0.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  const leader = await until('leader', 30_000, async () => quorumLeader(cw.layout, queues[0]!));
  const url = (n: { port: number }) => `amqp://guest:guest@127.0.0.1:${n.port}`;
  const leaderUrl = url(cw.layout.rabbit.find((n) => n.node === leader)!);
  const survivors = cw.layout.rabbit.filter((n) => n.node !== leader).map(url);
  const pub = await amqplib.connect(survivors[1]!);
  pub.on('error', () => undefined);
  const pch = await pub.createConfirmChannel();
  let publishing = true;
  void (async () => {
    while (publishing) {
      for (const q of queues) pch.sendToQueue(q, Buffer.from(String(Date.now())), { persistent: true });
      await pch.waitForConfirms().catch(() => undefined);
      await sleep(20);
    }
  })();
  let killedAt = 0;
  const results = PAUSES.map(async (pause, i) => {
    // Consumers start on the leader's node (as the workers did: the first address of the list).
    const c = await amqplib.connect(leaderUrl);
    c.on('error', () => undefined);
    let first: number | undefined;
    const ch = await c.createChannel();
    await ch.prefetch(50);
    await ch.consume(queues[i]!, (m) => m && ch.ack(m));
    await new Promise<void>((resolve) => c.on('close', () => resolve()));
    await sleep(pause);
    const c2 = await amqplib.connect(survivors[0]!);
    c2.on('error', () => undefined);
    const ch2 = await c2.createChannel();
    await ch2.prefetch(50);
    const t = Date.now();
    await ch2.consume(queues[i]!, (m) => {
      if (!m) return;
      if (first === undefined && Date.now() > killedAt) first = Date.now();
      ch2.ack(m);
    });
    const consumeMs = Date.now() - t;
    await until(`delivery after the kill on ${queues[i]}`, 90_000, async () => (first ? true : undefined), 100).catch(() => undefined);
    await c2.close();
    return `${queues[i]}: re-subscribed ${pause} ms after the loss (consume-ok in ${consumeMs} ms); first delivery ${first ? ((first - killedAt) / 1000).toFixed(1) : '>90'} s after the kill`;
  });
  await sleep(3_000);
  process.stdout.write(`# killing ${leader}\n`);
  killedAt = Date.now();
  killRabbitNode(cw.layout, leader);
  for (const r of await Promise.all(results)) process.stdout.write(`${r}\n`);
  publishing = false;
  await pub.close().catch(() => undefined);
} finally {
  await cw.down();
}
process.exit(0);
