import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabases, type Databases } from '../../infra/shards';
import { transaction } from '../../infra/db';
import { firstDelivery } from '../../infra/inbox';
import { TOPICS } from '../../infra/topology';
import { connectClient, waitFor, type TestClient } from '../support/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedTask, taskState } from '../support/seed';

const root = path.resolve(import.meta.dirname, '../..');
let world: TestEnv;
let client: TestClient;
let dbs: Databases;
let child: ChildProcess | undefined;

test.before(async () => {
  world = await createTestEnv();
  dbs = await openDatabases(world.config, { poolSize: 2, name: 'crash-test' });
  client = await connectClient(world.config.amqpUrl);
});

test.after(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await client?.close();
  await dbs?.close();
  await world?.cleanup();
});

function relayProcess(extra: Record<string, string>): { child: ChildProcess; exited: Promise<NodeJS.Signals | number | null> } {
  const c = spawn(process.execPath, ['--import', 'tsx', 'workers/run.ts', 'task-compensation'], {
    cwd: root,
    env: { ...process.env, ...world.env, OUTBOX_LEASE_MS: '5000', ...extra },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child = c;
  return { child: c, exited: new Promise((resolve) => c.on('exit', (code, signal) => resolve(signal ?? code))) };
}

test('relay killed between confirm and marking: published again with the same id, the effect happens once', async () => {
  const userId = 'crash-user';
  const t = await seedTask(dbs, userId, TOPICS.partakeCreated);
  const state = () => taskState(t);

  const crashing = relayProcess({ AQ_CRASH_AT: 'relay-after-confirm' });
  assert.is(await crashing.exited, 'SIGKILL');
  await client.waitEvent((e) => e.props.messageId === t!.messageId, 5_000);
  assert.is(await state(), 'create', 'confirmed but never marked');

  const healthy = relayProcess({});
  await waitFor(() => client.events.filter((e) => e.props.messageId === t!.messageId).length === 2, 20_000, 'the second publish');
  await waitFor(async () => (await state()) === 'completed', 5_000, 'completed');
  healthy.child.kill('SIGTERM');
  assert.is(await healthy.exited, 0);

  const copies = client.events.filter((e) => e.props.messageId === t!.messageId);
  assert.equal(
    copies.map((e) => e.body.id),
    [t!.messageId, t!.messageId],
  );
  // A consumer deduplicating by message id applies the event once.
  const applied = [];
  for (const e of copies) applied.push(await transaction(dbs.global, (tx) => firstDelivery(tx, 'crash-test', String(e.props.messageId))));
  assert.equal(applied, [true, false]);
});

test.run();
