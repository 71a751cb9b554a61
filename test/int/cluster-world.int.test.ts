import amqplib from 'amqplib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from '../cluster/layout';
import { privateWorld, type PrivateWorld } from '../cluster/private';
import { rabbitStatus } from '../cluster/rabbit-nodes';
import { clusterStatus, killRabbitNode, quorumLeader, rabbitCli, startRabbitNode } from '../cluster/world';

/**
 * The RabbitMQ side of the cluster world and its fault helpers: three nodes joined, a quorum
 * queue's leader found, that node killed (kill -9), a new leader elected with nothing lost, the
 * node started again and back in the cluster. Slow (three brokers boot): runs with AQ_CLUSTER_TESTS=1.
 * The Redis helpers are exercised by redis-cluster.int.test.ts.
 */
const test = suite('cluster-world');
const enabled = process.env.AQ_CLUSTER_TESTS === '1';
let cw: PrivateWorld;
const QUEUE = 'probe.quorum';

if (!enabled) {
  // No test registered (uvu's Skipped count is not part of its Total, which test/run.ts reads).
  process.stdout.write('cluster-world: not run (three RabbitMQ nodes take about a minute to boot); run with AQ_CLUSTER_TESTS=1\n');
} else {
  test.before(async () => {
    cw = await privateWorld(['rabbitmq']);
  });
  test.after(async () => {
    await cw?.down();
  });

  test("three nodes of our own in one cluster; the machine's default node is never addressed", async () => {
    const s = await rabbitStatus(cw.layout);
    assert.is(s.length, 3);
    for (const n of s) assert.equal([n.running, [...n.clustered].sort()], [true, cw.layout.rabbit.map((r) => r.node).sort()], n.node);
    assert.not.ok(s.some((n) => n.node.startsWith('rabbit@')));
    try {
      await rabbitCli(cw.layout, { node: 'rabbit@localhost', port: 5672, distPort: 25672 }, ['status']);
      assert.unreachable('the default node was addressed');
    } catch (err) {
      assert.match((err as Error).message, 'refusing to address node rabbit@localhost');
    }
    assert.throws(() => killRabbitNode(cw.layout, 'rabbit@localhost'), /not a running node of this world/);
    assert.is((await clusterStatus({ layout: cw.layout })).rabbit.length, 3);
  });

  test('kill -9 the leader of a quorum queue: another node leads, no message lost, the node rejoins', async () => {
    const urls = cw.env.AMQP_URL!.split(',');
    const conn = await amqplib.connect(urls[0]!);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (let i = 0; i < 10; i++) ch.sendToQueue(QUEUE, Buffer.from(String(i)), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    const leader = await until('a leader', 20_000, async () => quorumLeader(cw.layout, QUEUE));
    assert.ok(
      cw.layout.rabbit.some((r) => r.node === leader),
      leader,
    );
    killRabbitNode(cw.layout, leader);
    const next = await until(
      'a new leader',
      60_000,
      async () => {
        const l = await quorumLeader(cw.layout, QUEUE);
        return l !== leader ? l : undefined;
      },
      1_000,
    );
    assert.is.not(next, leader);
    const survivor = cw.layout.rabbit.find((r) => r.node === next)!;
    const c2 = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${survivor.port}`);
    const ch2 = await c2.createChannel();
    assert.is((await ch2.checkQueue(QUEUE)).messageCount, 10);
    await c2.close();
    await startRabbitNode(cw.layout, cw.layout.rabbit.find((r) => r.node === leader)!);
    await until('the killed node back in the cluster', 60_000, async () => ((await rabbitStatus(cw.layout)).every((n) => n.running && n.clustered.length === 3) ? true : undefined), 1_000);
  });
}

test.run();
