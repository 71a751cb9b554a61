import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * `npm test [-- FILTER...]`: unit tests in one process, then each integration file in its own
 * process (each builds its own isolated world). Ends with the line `N passed, N failed`.
 * FILTER: `unit`, `int`, or parts of file names.
 */
const filters = process.argv.slice(2);
const root = path.resolve(import.meta.dirname, '..');
const list = (dir: string, suffix: string) =>
  fs.existsSync(path.join(root, dir))
    ? fs
        .readdirSync(path.join(root, dir))
        .filter((f) => f.endsWith(suffix))
        .sort()
        .map((f) => `${dir}/${f}`)
    : [];

const unit = list('test/unit', '.test.ts');
const int = list('test/int', '.int.test.ts');
const wanted = (f: string) => !filters.length || filters.some((x) => (x === 'unit' ? f.startsWith('test/unit/') : x === 'int' ? f.startsWith('test/int/') : f.includes(x)));

type Tally = { passed: number; failed: number; skipped: number };

/** A file that runs longer than this is killed and counted as one failure (a hang must not eat CI's budget). */
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_S ?? 600) * 1000;

function runUvu(files: string[]): Promise<Tally> {
  const started = Date.now();
  return new Promise((resolve) => {
    // uvu's own CLI takes a directory + pattern; one anchored pattern selects exactly these files.
    const pattern = `^(${files.map((f) => path.basename(f).replace(/[.]/g, '\\.')).join('|')})$`;
    const dir = path.dirname(files[0]!);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), dir, pattern, '--color', 'false'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, FORCE_COLOR: '0' },
      detached: true, // its own process group, so a timeout also ends the workers it started
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, fileTimeoutMs);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\n(${files.length === 1 ? files[0] : 'unit'}: ${seconds} s)\n`);
      if (timedOut) {
        process.stdout.write(`\n!! ${files.join(', ')} killed after ${fileTimeoutMs / 1000} s: counted as one failure\n`);
        return resolve({ passed: 0, failed: 1, skipped: 0 });
      }
      const clean = out.replace(/\x1b\[[0-9;]*m/g, '');
      const num = (label: string) => Number(clean.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') || 0;
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        process.stdout.write(`\n!! ${files.join(', ')} ended (code ${code}) without a summary: counted as one failure\n`);
        return resolve({ passed: 0, failed: 1, skipped: 0 });
      }
      const failed = total - passed - skipped + (code !== 0 && total === passed + skipped ? 1 : 0);
      resolve({ passed, failed, skipped });
    });
  });
}

const sum: Tally = { passed: 0, failed: 0, skipped: 0 };
const add = (t: Tally) => ((sum.passed += t.passed), (sum.failed += t.failed), (sum.skipped += t.skipped));
const unitFiles = unit.filter(wanted);
if (unitFiles.length) {
  process.stdout.write(`\n# unit: ${unitFiles.length} file(s)\n`);
  add(await runUvu(unitFiles));
}
for (const f of int.filter(wanted)) {
  process.stdout.write(`\n# ${f}\n`);
  add(await runUvu([f]));
}
if (sum.skipped) process.stdout.write(`(${sum.skipped} skipped)\n`);
process.stdout.write(`${sum.passed} passed, ${sum.failed} failed\n`);
process.exit(sum.failed || sum.passed + sum.failed === 0 ? 1 : 0);
