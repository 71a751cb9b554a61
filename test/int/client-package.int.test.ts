import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestEnv, type TestEnv } from '../support/env';
import { startWorker, type Running } from '../support/workers';

/** A consumer of the package outside it: imports `activity-quota/client` from the build, type-checks against its .d.ts. */
const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let env: TestEnv;
let worker: Running;
let dir: string;

const newest = (d: string): number => Math.max(...fs.readdirSync(d, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(d, e.name)) : fs.statSync(path.join(d, e.name)).mtimeMs)));

test.before(async () => {
  const built = ['dist/client.mjs', 'dist/client.d.ts'].map((f) => path.join(root, f));
  const sources = Math.max(newest(path.join(root, 'infra/client')), newest(path.join(root, 'infra/contract')), fs.statSync(path.join(root, 'infra/topology.ts')).mtimeMs);
  if (built.some((f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < sources)) await run('npm', ['run', '-s', 'build:client'], { cwd: root, timeout: 240_000 });
  env = await createTestEnv();
  worker = await startWorker('partake', env.config);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-consumer-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules/activity-quota'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
});

test.after(async () => {
  await worker?.stop();
  await env?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('plain node imports activity-quota/client and calls the service', async () => {
  fs.writeFileSync(
    path.join(dir, 'caller.mjs'),
    `
import { connect, QUEUES } from 'activity-quota/client';
const client = await connect({ url: process.argv[2], timeoutMs: 10000 });
const quota = await client.query({ userId: 'nobody', activityId: 100301 });
const unknown = await client.partake({ userId: 'nobody', activityId: 424242 });
await client.close();
process.stdout.write(JSON.stringify({ queue: QUEUES.partake, quota, unknown }));
`,
  );
  const r = await run(process.execPath, ['caller.mjs', env.config.amqpUrl], { cwd: dir, timeout: 60_000 });
  const out = JSON.parse(r.stdout);
  assert.is(out.queue, 'activity.partake');
  assert.equal(out.quota, { code: '0000', info: 'success', data: { totalCount: 0, totalCountSurplus: 0, dayCount: 0, dayCountSurplus: 0, monthCount: 0, monthCountSurplus: 0 } });
  assert.is(out.unknown.code, 'ERR_BIZ_010');
});

const tsc = (file: string) =>
  run(
    process.execPath,
    [
      path.join(root, 'node_modules/typescript/bin/tsc'),
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--typeRoots',
      path.join(root, 'node_modules/@types'),
      '--types',
      'node',
      file,
    ],
    { cwd: dir, timeout: 120_000 },
  )
    .then(() => '')
    .catch((e: { stdout?: string }) => e.stdout || 'failed');

test('the .d.ts types results by queue: a code the queue cannot answer does not compile', async () => {
  const body = (code: string) => `
import { connect } from 'activity-quota/client';
const c = await connect();
const r = await c.partake({ userId: 'u', activityId: 1 });
if (r.code === '0000') { const id: string = r.data.orderId; void id; }
else if (r.code === '${code}') { const info: string = r.info; void info; }
await c.close();
`;
  fs.writeFileSync(path.join(dir, 'good.mts'), body('ERR_BIZ_006'));
  fs.writeFileSync(path.join(dir, 'bad.mts'), body('ERR_BIZ_005')); // stock exhausted: a recharge code, never a partake reply
  assert.is(await tsc('good.mts'), '');
  assert.match(await tsc('bad.mts'), 'ERR_BIZ_005');
});

test.run();
