import { execFile } from 'node:child_process';
import path from 'node:path';
import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from '../../infra/db';
import { openDatabases, type Databases } from '../../infra/shards';
import { DEAD_LETTER_QUEUE, QUEUES, declareTopology } from '../../infra/topology';
import { createTestEnv, type TestEnv } from '../support/env';
import { seedTask, taskState, type SeededTask } from '../support/seed';

/** The operator commands as a person runs them: help, usage errors, lists, dry runs, unknown ids, unreachable services. */
const root = path.resolve(import.meta.dirname, '../..');
let env: TestEnv;
let dbs: Databases;
let conn: ChannelModel;
let ch: Channel;

test.before(async () => {
  env = await createTestEnv();
  dbs = await openDatabases(env.config, { poolSize: 2, name: 'test' });
  conn = await amqplib.connect(env.config.amqpUrl);
  ch = await conn.createChannel();
  await declareTopology(ch, env.config);
});

test.after(async () => {
  await conn?.close().catch(() => undefined);
  await dbs?.close();
  await env?.cleanup();
});

type Ran = { code: number; stdout: string; stderr: string };
const npm = (script: string, args: string[], extra: Record<string, string> = {}): Promise<Ran> =>
  new Promise((resolve) => {
    execFile('npm', ['run', '-s', script, '--', ...args], { cwd: root, env: { ...process.env, ...env.env, ...extra }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });

test('--help on every command and subcommand: usage on stdout, exit 0', async () => {
  const cases: Array<[string, string[]]> = [
    ['migrate', ['--help']],
    ['catalog', ['--help']],
    ['catalog', ['load', '--help']],
    ['tasks', ['--help']],
    ['tasks', ['list', '--help']],
    ['tasks', ['replay', '-h']],
    ['dead-letter', ['--help']],
    ['dead-letter', ['list', '--help']],
    ['dead-letter', ['requeue', '--help']],
    ['call', ['--help']],
    ['call', ['history', '--help']],
    ['contract', ['--help']],
  ];
  for (const [script, args] of cases) {
    const r = await npm(script, args);
    assert.is(r.code, 0, `${script} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: npm run /, `${script} ${args.join(' ')}`);
    assert.is(r.stderr, '');
  }
  assert.match((await npm('tasks', ['replay', '--help'])).stdout, '--dry-run');
});

test('usage errors: exit 2, the reason first, then the usage', async () => {
  const cases: Array<[string, string[], string]> = [
    ['tasks', [], 'missing command'],
    ['tasks', ['list', '--limit', '0'], '--limit must be a whole number from 1 to 100000'],
    ['tasks', ['list', '--state', 'gone'], '--state must be one of'],
    ['tasks', ['replay'], 'give exactly one of --id ID ... or --state fail|dead'],
    ['tasks', ['list', '--frobnicate'], "Unknown option '--frobnicate'"],
    ['dead-letter', ['list', '--dry-run'], '--dry-run is for requeue'],
    ['dead-letter', ['purge'], 'unknown command "purge"'],
    ['call', ['partake', 'u1'], 'missing ACTIVITY'],
    ['call', ['history', 'u1', '1', '--limit', '101'], '--limit must be a whole number from 1 to 100'],
    ['call', ['use', 'u1', '1', '--limit', '5'], '--limit and --before are for history'],
    ['catalog', ['load'], 'missing FILE'],
    ['migrate', ['now'], 'unexpected argument now'],
  ];
  for (const [script, args, reason] of cases) {
    const r = await npm(script, args);
    assert.is(r.code, 2, `${script} ${args.join(' ')}`);
    assert.ok(r.stderr.startsWith(reason), `${script} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: npm run /);
    assert.is(r.stdout, '');
  }
});

async function deadTask(userId: string): Promise<SeededTask> {
  const t = await seedTask(dbs, userId, 'nobody.listens');
  await sql(t.ds, `UPDATE task SET state = 'dead', attempts = 10 WHERE id = $1`, [t.id]);
  return t;
}
const stateOf = taskState;

test('tasks: list --limit --json; replay --dry-run changes nothing; unknown ids are reported', async () => {
  const a = await deadTask('cli-a');
  const b = await deadTask('cli-b');
  const listed = JSON.parse((await npm('tasks', ['list', '--limit', '1', '--json'])).stdout) as unknown[];
  assert.is(listed.length, 1);
  const dry = await npm('tasks', ['replay', '--id', a.messageId, 'no-such-task', '--dry-run', '--json']);
  assert.is(dry.code, 0, dry.stderr);
  const out = JSON.parse(dry.stdout);
  assert.is(out.dryRun, true);
  assert.equal(
    out.replayed.map((t: { messageId: string }) => t.messageId),
    [a.messageId],
  );
  assert.equal(out.notFound, ['no-such-task']);
  assert.is(await stateOf(a), 'dead');
  const text = await npm('tasks', ['replay', '--state', 'dead', '--dry-run']);
  assert.match(text.stdout, /^2 task\(s\) would be re-queued/);
  assert.is(await stateOf(b), 'dead');
  const real = await npm('tasks', ['replay', '--id', `${b.shard}:${b.id}`, 'nope-2']);
  assert.match(real.stdout, /^1 task\(s\) re-queued/);
  assert.match(real.stdout, /not found: nope-2/);
  assert.is(await stateOf(b), 'create');
});

test('dead-letter: list --limit; requeue --dry-run keeps the message where it is', async () => {
  for (const id of ['dl-1', 'dl-2']) {
    ch.sendToQueue(DEAD_LETTER_QUEUE, Buffer.from('{"userId":'), { messageId: id, headers: { 'x-original-queue': QUEUES.recharge, 'x-error': 'INVALID_JSON: body is not JSON' } });
  }
  await new Promise((r) => setTimeout(r, 300));
  const one = JSON.parse((await npm('dead-letter', ['list', '--limit', '1', '--json'])).stdout) as Array<{ messageId: string }>;
  assert.equal(
    one.map((l) => l.messageId),
    ['dl-1'],
  );
  const dry = JSON.parse((await npm('dead-letter', ['requeue', '--id', 'dl-2', 'dl-404', '--dry-run', '--json'])).stdout);
  assert.equal(dry, { dryRun: true, requeued: [{ messageId: 'dl-2', queue: QUEUES.recharge }], kept: [{ messageId: 'dl-404', why: 'not found' }] });
  assert.is((await ch.checkQueue(DEAD_LETTER_QUEUE)).messageCount, 2);
  assert.is((await ch.checkQueue(QUEUES.recharge)).messageCount, 0);
});

test('an unreachable service: one line naming the host, password masked, no stack', async () => {
  const r = await npm('tasks', ['list'], { DATABASE_URL: 'postgres://ops:s3cr%40t@127.0.0.1:1/aq', SHARD_DATABASE_URLS: '' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /^cannot reach PostgreSQL at postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/aq/);
  assert.not.match(r.stderr, 's3cr');
  assert.not.match(r.stderr, /\n\s+at /);
  const q = await npm('dead-letter', ['list'], { AMQP_URL: 'amqp://guest:hunter2@127.0.0.1:1' });
  assert.is(q.code, 1);
  assert.match(q.stderr, /^cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
  assert.not.match(q.stderr, 'hunter2');
});

test.run();
