import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/**
 * A PostgreSQL that asks for a password (scram-sha-256, no trust), started for this test on its
 * own port and data folder and stopped after: the password in DATABASE_URL, special characters
 * URL-encoded, is enough for migrate and the commands; a wrong one is named with the password masked.
 */
const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const PASSWORD = 'p@ss:w/rd#%1 ü';
const bin = (name: string) => {
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql').sort() : [];
  return path.join('/usr/lib/postgresql', versions.at(-1) ?? '15', 'bin', name);
};
let dir: string;
let port: number;
const asPostgres = (cmd: string, args: string[]) => (process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-pg-password-'));
  fs.chmodSync(dir, 0o777);
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, PASSWORD);
  fs.chmodSync(pwfile, 0o644);
  port = await freePort();
  await asPostgres(bin('initdb'), ['-D', path.join(dir, 'data'), '-U', 'app', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8']);
  await asPostgres(bin('pg_ctl'), ['-D', path.join(dir, 'data'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', path.join(dir, 'log'), '-w', 'start']);
});

test.after(async () => {
  if (dir) {
    await asPostgres(bin('pg_ctl'), ['-D', path.join(dir, 'data'), '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const npm = (script: string, args: string[], url: string) =>
  run('npm', ['run', '-s', script, '--', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: url, SHARD_DATABASE_URLS: '', LOG_LEVEL: 'warn' }, timeout: 120_000 })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }))
    .catch((e: { code?: number; stdout?: string; stderr?: string }) => ({ code: Number(e.code ?? 1), stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));

test('the password in DATABASE_URL (URL-encoded) is enough: migrate creates and migrates every database, tasks lists', async () => {
  const url = `postgres://app:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/activity`;
  const m = await npm('migrate', [], url);
  assert.is(m.code, 0, m.stderr);
  const t = await npm('tasks', ['list', '--json'], url);
  assert.is(t.code, 0, t.stderr);
  assert.equal(JSON.parse(t.stdout), []);
  const { stdout } = await run(
    bin('psql'),
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'app', '-d', 'postgres', '-Atc', "SELECT datname FROM pg_database WHERE datname LIKE 'activity%' ORDER BY 1"],
    { env: { ...process.env, PGPASSWORD: PASSWORD } },
  );
  assert.equal(stdout.trim().split('\n'), ['activity', 'activity_01', 'activity_02']);
});

test('a wrong password: one line naming the host, the password masked', async () => {
  const r = await npm('tasks', ['list'], `postgres://app:wrong-secret@127.0.0.1:${port}/activity`);
  assert.is(r.code, 1);
  assert.match(r.stderr, `cannot reach PostgreSQL at postgres://app:***@127.0.0.1:${port}/activity`);
  assert.match(r.stderr, 'password authentication failed');
  assert.not.match(r.stderr, 'wrong-secret');
});

test.run();
