import amqplib from 'amqplib';
import { privateWorld } from './private';
import { killRabbitNode, quorumLeader } from './world';
import { sleep, until } from './layout';
import { declareTopology, QUEUES, type TopologySettings } from '../../infra/topology';

/**
 * How long a quorum-queue consumer waits for deliveries after the node leading its queue is killed
 * (-9). Two kinds of consumer, each on a queue of its own:
 * - `moved:<ms>`: connected to the leader's node, so it loses its connection, and subscribes again
 *   on a surviving node that many ms later (200 ms is what the workers' reconnect does);
 * - `stayed:<ms>`: connected to a surviving node from the start, so it never notices the kill; it
 *   acks each delivery that many ms after receiving it (a handler's work) with up to 50 unacked;
 * - `declared:<ms>`: like `moved`, but on the new connection it first declares the service's whole
 *   topology (`declareTopology`, as a worker's reconnect does) with its queue among the input
 *   queues' arguments, and reports how long each declaration took.
 * `npx tsx test/cluster/rabbit-gap.ts [moved:200 stayed:0 stayed:100 …]` (brings up 3 nodes of its own).
 */
type Case = { kind: 'moved' | 'stayed' | 'declared'; ms: number };
const args = process.argv.slice(2).map((a): Case => {
  const [kind, ms] = a.split(':');
  if ((kind !== 'moved' && kind !== 'stayed' && kind !== 'declared') || !(Number(ms) >= 0)) throw new Error(`${a}: expected moved:<ms>, stayed:<ms> or declared:<ms>`);
  return { kind, ms: Number(ms) };
});
const CASES: Case[] = args.length
  ? args
  : [
      { kind: 'moved', ms: 200 },
      { kind: 'stayed', ms: 0 },
      { kind: 'stayed', ms: 100 },
    ];
const cw = await privateWorld(['rabbitmq'], (s) => process.stdout.write(`# ${s}\n`));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cw.down().finally(() => process.exit(130)));
try {
  const urls = cw.env.AMQP_URL!.split(',');
  const setup = await amqplib.connect(urls[0]!);
  setup.on('error', () => undefined);
  const ch0 = await setup.createChannel();
  const queues = CASES.map((c, i) => (c.kind === 'declared' ? QUEUES.recharge : `gap.${i}.${c.kind}.${c.ms}`));
  // Every queue's leader on the first node: declared there, and the node killed is that one.
  const topology: TopologySettings = { deliveryLimit: 20, parkMs: 5_000, quorumInitialGroupSize: 3 };
  if (CASES.some((c) => c.kind === 'declared')) await declareTopology(ch0, topology);
  for (const q of queues) if (q !== QUEUES.recharge) await ch0.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-queue-leader-locator': 'client-local' } });
  const leader = await until('leader', 30_000, async () => quorumLeader(cw.layout, queues[0]!));
  for (const q of queues.slice(1)) if ((await until('leader', 30_000, async () => quorumLeader(cw.layout, q))) !== leader) throw new Error(`${q}: its leader is not on ${leader}`);
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
  const consume = async (u: string, q: string, ackDelayMs: number, seen: (t: number) => void) => {
    const c = await amqplib.connect(u);
    c.on('error', () => undefined);
    const ch = await c.createChannel();
    await ch.prefetch(50);
    const t = Date.now();
    await ch.consume(q, (m) => {
      if (!m) return;
      seen(Date.now());
      const ack = () => {
        try {
          ch.ack(m);
        } catch {
          // the connection is closed at the end: nothing to ack on
        }
      };
      if (ackDelayMs) setTimeout(ack, ackDelayMs);
      else ack();
    });
    return { c, consumeMs: Date.now() - t };
  };
  const results = CASES.map(async (cs, i) => {
    let first: number | undefined;
    const seen = (t: number) => {
      if (killedAt && t > killedAt) first ??= t;
    };
    let note: string;
    let conn: amqplib.ChannelModel;
    if (cs.kind === 'moved' || cs.kind === 'declared') {
      const before = await consume(leaderUrl, queues[i]!, 0, () => undefined);
      await new Promise<void>((resolve) => before.c.on('close', () => resolve()));
      await sleep(cs.ms);
      let declared = '';
      if (cs.kind === 'declared') {
        const d = await amqplib.connect(survivors[0]!);
        d.on('error', () => undefined);
        const dch = await d.createChannel();
        const slow: string[] = [];
        const t0 = Date.now();
        // Each declaration timed: which one waits, if any.
        const timed = new Proxy(dch, {
          get(target, key) {
            const v = Reflect.get(target, key) as unknown;
            if (typeof v !== 'function') return v;
            return async (...a: unknown[]) => {
              const t = Date.now();
              try {
                return await (v as (...x: unknown[]) => Promise<unknown>).apply(target, a);
              } finally {
                if (Date.now() - t > 300) slow.push(`${String(key)} ${String(a[0])} ${Date.now() - t} ms`);
              }
            };
          },
        });
        await declareTopology(timed, topology);
        declared = `; the topology declared in ${Date.now() - t0} ms${slow.length ? ` (slow: ${slow.join(', ')})` : ''}`;
        await d.close().catch(() => undefined);
      }
      const r = await consume(survivors[0]!, queues[i]!, 0, seen);
      conn = r.c;
      note = `subscribed again on a survivor ${cs.ms} ms after the loss${declared} (consume-ok in ${r.consumeMs} ms)`;
    } else {
      conn = (await consume(survivors[i % survivors.length]!, queues[i]!, cs.ms, seen)).c;
      note = `on a survivor throughout, acks ${cs.ms} ms after each delivery`;
    }
    await until(`a delivery after the kill on ${queues[i]}`, 90_000, async () => (first ? true : undefined), 100).catch(() => undefined);
    await conn.close().catch(() => undefined);
    return `${queues[i]}: ${note}; first delivery ${first ? ((first - killedAt) / 1000).toFixed(1) : '>90'} s after the kill`;
  });
  await sleep(3_000);
  process.stdout.write(`# killing ${leader} (leader of every queue)\n`);
  killedAt = Date.now();
  killRabbitNode(cw.layout, leader);
  for (const r of await Promise.all(results)) process.stdout.write(`${r}\n`);
  publishing = false;
  await pub.close().catch(() => undefined);
} finally {
  await cw.down();
}
process.exit(0);
