import fs from 'node:fs';
import path from 'node:path';
import { SCENARIOS, type Scenario } from './scenarios';

/**
 * `npm run test:faults [-- --quick] [-- --only NAME[,NAME]] [-- --no-global] [-- --list]`: each
 * scenario runs the real pipeline (`npm start`) in its own world under load, injects one fault,
 * waits until the pipeline is idle and checks the books. Prints `ok - name` / `not ok - name: why`,
 * the results table (also written to bench/out/faults-*.md) and `N passed, N failed`.
 */
const args = process.argv.slice(2);
const flag = (f: string) => args.includes(f);
const value = (f: string) => {
  const i = args.findIndex((a) => a === f || a.startsWith(`${f}=`));
  if (i < 0) return undefined;
  return args[i]!.includes('=') ? args[i]!.split('=').slice(1).join('=') : args[i + 1];
};
const only = value('--only')?.split(',').map((s) => s.trim()).filter(Boolean);
let chosen: Scenario[] = SCENARIOS.filter((s) => (only ? only.some((o) => s.name === o || s.name.includes(o)) : !flag('--quick') || s.quick));
if (flag('--no-global')) chosen = chosen.filter((s) => !s.global);
if (flag('--list')) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name}${s.quick ? ' [quick]' : ''}${s.global ? ' [restarts a shared service]' : ''}\n`);
  process.exit(0);
}
if (!chosen.length) {
  process.stdout.write(`no scenario matches ${only?.join(',')}\n0 passed, 1 failed\n`);
  process.exit(1);
}

type Row = { name: string; load: string; fault: string; recovery: string; inputs: string; effects: string; lost: string; doubled: string; result: string };
const rows: Row[] = [];
let passed = 0;
let failed = 0;
const started = Date.now();
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' | ').slice(0, 1500);

process.on('unhandledRejection', (err) => process.stderr.write(`(late error ignored: ${String((err as Error)?.message ?? err)})\n`));

process.stdout.write(`# fault suite: ${chosen.length} scenario(s)${flag('--quick') ? ' (quick)' : ''}\n`);
for (const s of chosen) {
  const t0 = Date.now();
  try {
    const r = await s.run();
    const b = r.books;
    const ok = b.lost === 0 && b.doubled === 0 && b.violations.length === 0;
    rows.push({ name: s.name, load: s.load, fault: s.fault, recovery: `${(r.recoveryMs / 1000).toFixed(1)} s`, inputs: String(b.inputs), effects: String(b.effects), lost: String(b.lost), doubled: String(b.doubled), result: ok ? 'pass' : 'FAIL' });
    if (ok) (passed++, process.stdout.write(`ok - ${s.name} (${((Date.now() - t0) / 1000).toFixed(0)} s; ${b.inputs} inputs, ${b.effects} effects, recovery ${(r.recoveryMs / 1000).toFixed(1)} s)\n`));
    else (failed++, process.stdout.write(`not ok - ${s.name}: ${b.lost} lost, ${b.doubled} doubled; ${oneLine(b.violations.join('; '))}\n`));
  } catch (err) {
    failed++;
    rows.push({ name: s.name, load: s.load, fault: s.fault, recovery: '-', inputs: '-', effects: '-', lost: '-', doubled: '-', result: 'ERROR' });
    process.stdout.write(`not ok - ${s.name}: ${oneLine(String((err as Error)?.stack ?? err))}\n`);
  }
}

const table = [
  '| scenario | load | fault | recovery | inputs | effects | lost | doubled | result |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.load} | ${r.fault} | ${r.recovery} | ${r.inputs} | ${r.effects} | ${r.lost} | ${r.doubled} | ${r.result} |`),
].join('\n');
process.stdout.write(`\n${table}\n\n`);
try {
  const dir = path.resolve(import.meta.dirname, '../../bench/out');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const text = `# fault suite ${new Date().toISOString()} (${((Date.now() - started) / 1000).toFixed(0)} s)\n\n${table}\n`;
  fs.writeFileSync(path.join(dir, `faults-${stamp}.md`), text);
  fs.writeFileSync(path.join(dir, 'faults-latest.md'), text);
} catch (err) {
  process.stderr.write(`could not write bench/out: ${String(err)}\n`);
}
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed || !passed ? 1 : 0);
