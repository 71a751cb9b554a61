import { openClusterWorld, writeClusterRows } from './cluster-run';
import { writeRunFile } from './report';
import type { Scenario } from './scenarios';

/**
 * `npm run test:faults -- --cluster [--quick] [--only NAME,…] [--reuse] [--docs|--no-docs] [--list]`:
 * the cluster scenarios (test/faults/cluster-scenarios.ts) in a cluster world brought up here and
 * torn down at the end, also when a scenario fails or on SIGINT/SIGTERM (`--reuse`: the world of
 * `npm run cluster -- up`, left up). Prints `ok - name` / `not ok - name: why`, the table with what
 * each fault cost, and `N passed, N failed` last. A full run (or `--docs`) writes its rows into
 * docs/RELIABILITY.md between the cluster-faults markers.
 */
const args = process.argv.slice(2);
const flag = (f: string) => args.includes(f);
const value = (f: string) => {
  const i = args.findIndex((a) => a === f || a.startsWith(`${f}=`));
  if (i < 0) return undefined;
  return args[i]!.includes('=') ? args[i]!.split('=').slice(1).join('=') : args[i + 1];
};
const only = value('--only')
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' | ').slice(0, 1500);
const harnessErrors: string[] = [];
process.on('unhandledRejection', (err) => {
  harnessErrors.push(String((err as Error)?.stack ?? err));
  process.stderr.write(`unhandled rejection in the harness: ${String((err as Error)?.message ?? err)}\n`);
});

type Row = { name: string; load: string; fault: string; recovery: string; inputs: string; effects: string; lost: string; doubled: string; result: string; cost: string };

async function runOne(s: Scenario): Promise<Row> {
  const t0 = Date.now();
  const base = { name: s.name, load: s.load, fault: s.fault };
  const errorsBefore = harnessErrors.length;
  try {
    const r = await s.run();
    const b = r.books;
    for (const e of harnessErrors.slice(errorsBefore)) b.violations.push(`[harness] unhandled rejection: ${oneLine(e).slice(0, 300)}`);
    const ok = b.lost === 0 && b.doubled === 0 && b.violations.length === 0;
    const row = {
      ...base,
      recovery: `${(r.recoveryMs / 1000).toFixed(1)} s`,
      inputs: String(b.inputs),
      effects: String(b.effects),
      lost: String(b.lost),
      doubled: String(b.doubled),
      result: ok ? 'pass' : 'FAIL',
      cost: r.cost ?? '-',
    };
    if (ok) process.stdout.write(`ok - ${s.name} (${((Date.now() - t0) / 1000).toFixed(0)} s; ${b.inputs} inputs, ${b.effects} effects, recovery ${row.recovery}; ${row.cost})\n`);
    else process.stdout.write(`not ok - ${s.name}: ${b.lost} lost, ${b.doubled} doubled; ${oneLine(b.violations.join('; '))} (${row.cost})\n`);
    return row;
  } catch (err) {
    process.stdout.write(`not ok - ${s.name}: ${oneLine(String((err as Error)?.stack ?? err))}\n`);
    return { ...base, recovery: '-', inputs: '-', effects: '-', lost: '-', doubled: '-', result: 'ERROR', cost: '-' };
  }
}

const started = Date.now();
const cluster = await openClusterWorld({ reuse: flag('--reuse'), list: flag('--list') });
if (flag('--list')) {
  for (const s of cluster.scenarios) process.stdout.write(`${s.name}${s.quick ? ' [quick]' : ''}\n`);
  process.exit(0);
}
const chosen = cluster.scenarios.filter((s) => (only ? only.some((o) => s.name === o || s.name.includes(o)) : !flag('--quick') || s.quick));
const rows: Row[] = [];
if (!chosen.length) process.stdout.write(`no cluster scenario matches ${only?.join(',')}\n`);
else process.stdout.write(`# cluster fault suite: ${chosen.length} scenario(s)${flag('--quick') ? ' (quick)' : ''}\n`);
let teardown = 0;
try {
  for (const s of chosen) rows.push(await runOne(s));
} finally {
  await cluster.down().catch((err) => (teardown++, process.stdout.write(`not ok - cluster world teardown: ${oneLine(String((err as Error).message))}\n`)));
}
const table = [
  '| scenario | load | fault | recovery | inputs | effects | lost | doubled | result | what the fault cost |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.load} | ${r.fault} | ${r.recovery} | ${r.inputs} | ${r.effects} | ${r.lost} | ${r.doubled} | ${r.result} | ${r.cost} |`),
].join('\n');
const seconds = ((Date.now() - started) / 1000).toFixed(0);
process.stdout.write(`\n${table}\n\n# cluster fault suite took ${seconds} s\n`);
writeRunFile(`# cluster fault suite ${new Date().toISOString()} (${seconds} s)\n\n${table}\n`);
const docs = flag('--docs') || (!flag('--no-docs') && !only && !flag('--quick') && !flag('--reuse'));
if (docs)
  writeClusterRows(
    rows
      .filter((r) => r.result !== 'ERROR')
      .map((r) => ({
        name: r.name,
        line: `| ${r.name} | ${r.load} | ${r.fault} | ${r.recovery} | ${r.inputs} | ${r.lost} | ${r.doubled} | ${r.result} | ${r.cost} | ${new Date().toISOString().slice(0, 10)} |`,
      })),
  );
const passed = rows.filter((r) => r.result === 'pass').length;
const failed = rows.length - passed + teardown + (chosen.length ? 0 : 1) + (harnessErrors.length ? 1 : 0);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
