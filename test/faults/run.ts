import { MUTATIONS } from './mutations';
import { healthyTable, mutationTable, scenarioTable, stamp, writeDocs, writeRunFile, type MutationRow, type ScenarioRow } from './report';
import { SCENARIOS, type Scenario } from './scenarios';

/**
 * `npm run test:faults [-- --quick] [-- --only NAME[,NAME]] [-- --no-global] [-- --list] [-- --mutations] [-- --docs|--no-docs] [-- --tables]`:
 * each scenario runs the real pipeline (`npm start`) in its own world under load, injects one fault,
 * waits until the pipeline is idle and checks the books. Prints `ok - name` / `not ok - name: why`,
 * the results table (also bench/out/faults-*.md; with --docs docs/faults.json and the tables of
 * docs/RELIABILITY.md) and `N passed, N failed`. `--mutations` runs, per protection switched off,
 * the scenario that should catch it; a mutation caught counts as passed. `--cluster`: test/faults/cluster-main.ts.
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
const exact = new Set([...SCENARIOS.map((s) => s.name), ...MUTATIONS.map((m) => m.name)]);
/** An exact name selects only itself; any other text every name that contains it. */
const matches = (name: string) => !only || only.some((o) => name === o || (!exact.has(o) && name.includes(o)));
// `--cluster`: the cluster scenarios, with a runner of their own that brings the cluster world up and down (and exits).
if (flag('--cluster')) await import('./cluster-main');
if (flag('--list')) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name}${s.quick ? ' [quick]' : ''}${s.global ? ' [restarts a shared service]' : ''}\n`);
  for (const m of MUTATIONS) process.stdout.write(`mutation ${m.name} -> ${m.scenario}\n`);
  process.exit(0);
}

// Anything the harness leaves unhandled is a failure of the run, not a footnote.
const harnessErrors: string[] = [];
process.on('unhandledRejection', (err) => {
  harnessErrors.push(String((err as Error)?.stack ?? err));
  process.stderr.write(`unhandled rejection in the harness: ${String((err as Error)?.message ?? err)}\n`);
});

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' | ').slice(0, 1500);
const started = Date.now();
const docs = flag('--docs') || (!flag('--no-docs') && (flag('--mutations') || (!only && !flag('--quick') && !flag('--no-global'))));

/** Runs one scenario and turns its outcome into a row; never throws. */
async function runOne(s: Scenario): Promise<ScenarioRow> {
  const t0 = Date.now();
  const base = { name: s.name, load: s.load, fault: s.fault, ...stamp() };
  const errorsBefore = harnessErrors.length;
  try {
    const r = await s.run();
    const b = r.books;
    for (const e of harnessErrors.slice(errorsBefore)) b.violations.push(`[harness] unhandled rejection: ${oneLine(e).slice(0, 300)}`);
    const ok = b.lost === 0 && b.doubled === 0 && b.violations.length === 0;
    const row = {
      ...base,
      evidence: r.evidence ?? '-',
      recovery: `${(r.recoveryMs / 1000).toFixed(1)} s`,
      inputs: String(b.inputs),
      effects: String(b.effects),
      lost: String(b.lost),
      doubled: String(b.doubled),
      result: ok ? 'pass' : 'FAIL',
      why: ok ? undefined : b.violations.slice(0, 3).join('; '),
      healthy: r.healthy,
    };
    if (ok) process.stdout.write(`ok - ${s.name} (${((Date.now() - t0) / 1000).toFixed(0)} s; ${b.inputs} inputs, ${b.effects} effects, recovery ${row.recovery}; ${row.evidence})\n`);
    else process.stdout.write(`not ok - ${s.name}: ${b.lost} lost, ${b.doubled} doubled; ${oneLine(b.violations.join('; '))}\n`);
    return row;
  } catch (err) {
    process.stdout.write(`not ok - ${s.name}: ${oneLine(String((err as Error)?.stack ?? err))}\n`);
    return { ...base, evidence: '-', recovery: '-', inputs: '-', effects: '-', lost: '-', doubled: '-', result: 'ERROR', why: String((err as Error)?.message ?? err) };
  }
}

async function runScenarios(): Promise<number> {
  let chosen = SCENARIOS.filter((s) => (only ? matches(s.name) : !flag('--quick') || s.quick));
  if (flag('--no-global')) chosen = chosen.filter((s) => !s.global);
  if (!chosen.length) return (process.stdout.write(`no scenario matches ${only?.join(',')}\n`), 1);
  process.stdout.write(`# fault suite: ${chosen.length} scenario(s)${flag('--quick') ? ' (quick)' : ''}\n`);
  const rows: ScenarioRow[] = [];
  for (const s of chosen) rows.push(await runOne(s));
  const partial = rows.filter((r) => r.healthy?.length);
  const table = scenarioTable(rows) + (partial.length ? `\n\nThe healthy part during the fault next to its baseline (same run, same load):\n\n${healthyTable(partial)}` : '');
  process.stdout.write(`\n${table}\n\n`);
  writeRunFile(`# fault suite ${new Date().toISOString()} (${((Date.now() - started) / 1000).toFixed(0)} s)\n\n${table}\n`);
  if (docs) writeDocs({ scenarios: rows, scenarioOrder: SCENARIOS.map((s) => s.name), mutationOrder: MUTATIONS.map((m) => m.name) });
  const passed = rows.filter((r) => r.result === 'pass').length;
  process.stdout.write(`${passed} passed, ${rows.length - passed} failed\n`);
  return rows.length - passed;
}

async function runMutations(): Promise<number> {
  const chosen = MUTATIONS.filter((m) => matches(m.name));
  process.stdout.write(`# fault suite: ${chosen.length} mutation(s)\n`);
  const rows: MutationRow[] = [];
  for (const m of chosen) {
    const s = SCENARIOS.find((x) => x.name === m.scenario);
    if (!s) throw new Error(`mutation ${m.name}: no scenario ${m.scenario}`);
    process.env.AQ_MUTATION = m.name; // the workers the scenario starts inherit it; the harness never reads it
    process.env.FAULTS_IDLE_TIMEOUT_MS ??= '90000'; // a mutation that never gets idle is caught sooner
    const row = await runOne(s);
    delete process.env.AQ_MUTATION;
    const caught = row.result !== 'pass';
    rows.push({
      mutation: m.name,
      protection: m.protection,
      scenario: m.scenario,
      caught: caught ? 'yes' : 'no',
      how: caught ? `${row.result}: ${row.why ?? ''}` : 'the scenario passed without it',
      ...stamp(),
    });
    process.stdout.write(`${caught ? 'ok' : 'not ok'} - mutation ${m.name} ${caught ? 'caught' : 'NOT caught'} by ${m.scenario}\n`);
  }
  const table = mutationTable(rows);
  process.stdout.write(`\n${table}\n\n`);
  writeRunFile(`# fault suite mutations ${new Date().toISOString()} (${((Date.now() - started) / 1000).toFixed(0)} s)\n\n${table}\n`);
  if (docs) writeDocs({ mutations: rows, scenarioOrder: SCENARIOS.map((s) => s.name), mutationOrder: MUTATIONS.map((m) => m.name) });
  const caught = rows.filter((r) => r.caught === 'yes').length;
  process.stdout.write(`${caught} passed, ${rows.length - caught} failed\n`);
  return rows.length - caught;
}

if (flag('--tables')) {
  // Regenerate the tables of docs/RELIABILITY.md from docs/faults.json (after merging rows from another checkout).
  writeDocs({ scenarioOrder: SCENARIOS.map((s) => s.name), mutationOrder: MUTATIONS.map((m) => m.name) });
  process.exit(0);
}
const failed = flag('--mutations') ? await runMutations() : await runScenarios();
process.exit(failed || harnessErrors.length ? 1 : 0);
