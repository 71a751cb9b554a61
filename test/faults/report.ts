import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { HealthyRow } from './harness';

/**
 * The fault suite's reports: every run writes bench/out/faults-*.md; with `--docs` (default for a
 * run of every scenario, and for `--mutations`) its rows also go into docs/faults.json, one row per
 * scenario or mutation stamped with the commit and date of the run that produced it, and the two
 * tables between the markers in docs/RELIABILITY.md are generated from that file. Nobody edits them.
 */
export type ScenarioRow = {
  name: string;
  load: string;
  fault: string;
  evidence: string;
  recovery: string;
  inputs: string;
  effects: string;
  lost: string;
  doubled: string;
  result: string;
  why?: string;
  commit: string;
  date: string;
  healthy?: HealthyRow[];
};
export type MutationRow = { mutation: string; protection: string; scenario: string; caught: 'yes' | 'no'; how: string; commit: string; date: string };
type Stored = { scenarios: Record<string, ScenarioRow>; mutations: Record<string, MutationRow> };

const ROOT = path.resolve(import.meta.dirname, '../..');
const STORE = path.join(ROOT, 'docs', 'faults.json');
const DOC = path.join(ROOT, 'docs', 'RELIABILITY.md');
const MARKS = {
  scenarios: ['<!-- faults:scenarios:start -->', '<!-- faults:scenarios:end -->'],
  mutations: ['<!-- faults:mutations:start -->', '<!-- faults:mutations:end -->'],
  healthy: ['<!-- faults:healthy:start -->', '<!-- faults:healthy:end -->'],
} as const;

/** The commit the run tested (`+dirty` when the work tree had changes) and the date. */
export function stamp(): { commit: string; date: string } {
  const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
  let commit = 'unknown';
  try {
    commit = git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'infra', 'workers', 'domain', 'test').length ? '+dirty' : '');
  } catch {
    /* not a git checkout */
  }
  return { commit, date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC' };
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

export function scenarioTable(rows: readonly ScenarioRow[]): string {
  return [
    '| scenario | load | fault | fault shown by | recovery | inputs | effects | lost | doubled | result | commit, date |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${cell(r.load)} | ${cell(r.fault)} | ${cell(r.evidence)} | ${r.recovery} | ${r.inputs} | ${r.effects} | ${r.lost} | ${r.doubled} | ${r.result}${r.why ? `: ${cell(r.why.slice(0, 300))}` : ''} | ${r.commit}, ${r.date} |`,
    ),
  ].join('\n');
}

const num = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** Partial-failure scenarios: each healthy part during the fault next to its baseline of the same run. */
export function healthyTable(rows: readonly ScenarioRow[]): string {
  return [
    '| scenario | part | baseline /s | during fault /s | kept | baseline p99 ms | fault p99 ms | goal | result | commit, date |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.flatMap((r) =>
      (r.healthy ?? []).map(
        (h) =>
          `| ${r.name} | ${cell(h.part)} | ${num(h.baselinePerSec)} | ${num(h.faultPerSec)} | ${Number.isFinite(h.ratio) ? `${(h.ratio * 100).toFixed(0)} %` : '-'} | ${num(h.baselineP99Ms, 0)} | ${num(h.faultP99Ms, 0)} | ${cell(h.goal)} | ${h.ok ? 'pass' : 'FAIL'} | ${r.commit}, ${r.date} |`,
      ),
    ),
  ].join('\n');
}

export function mutationTable(rows: readonly MutationRow[]): string {
  return [
    '| mutation (`AQ_MUTATION=`) | protection switched off | scenario | caught | how | commit, date |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.mutation} | ${cell(r.protection)} | ${r.scenario} | ${r.caught} | ${cell(r.how.slice(0, 300))} | ${r.commit}, ${r.date} |`),
  ].join('\n');
}

/** Writes the run's file under bench/out (always). */
export function writeRunFile(text: string): void {
  const dir = path.join(ROOT, 'bench', 'out');
  fs.mkdirSync(dir, { recursive: true });
  const name = `faults-${new Date().toISOString().replace(/[:.]/g, '-')}.md`;
  fs.writeFileSync(path.join(dir, name), text);
  fs.writeFileSync(path.join(dir, 'faults-latest.md'), text);
}

/** Stores the rows of this run in docs/faults.json and regenerates both tables of docs/RELIABILITY.md (order: `order`). */
export function writeDocs(o: { scenarios?: ScenarioRow[]; mutations?: MutationRow[]; scenarioOrder: string[]; mutationOrder: string[] }): void {
  const stored: Stored = fs.existsSync(STORE) ? JSON.parse(fs.readFileSync(STORE, 'utf8')) : { scenarios: {}, mutations: {} };
  for (const r of o.scenarios ?? []) stored.scenarios[r.name] = r;
  for (const r of o.mutations ?? []) stored.mutations[r.mutation] = r;
  fs.writeFileSync(STORE, JSON.stringify(stored, null, 2) + '\n');
  const pick = <T>(m: Record<string, T>, order: string[]) => [
    ...order.filter((k) => m[k]).map((k) => m[k]!),
    ...Object.keys(m)
      .filter((k) => !order.includes(k))
      .map((k) => m[k]!),
  ];
  let doc = fs.readFileSync(DOC, 'utf8');
  doc = replaceBetween(doc, MARKS.scenarios, scenarioTable(pick(stored.scenarios, o.scenarioOrder)));
  doc = replaceBetween(doc, MARKS.mutations, mutationTable(pick(stored.mutations, o.mutationOrder)));
  doc = replaceBetween(doc, MARKS.healthy, healthyTable(pick(stored.scenarios, o.scenarioOrder).filter((r) => r.healthy?.length)));
  fs.writeFileSync(DOC, doc);
}

function replaceBetween(text: string, [start, end]: readonly [string, string], body: string): string {
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`docs/RELIABILITY.md lacks the markers ${start} … ${end}`);
  return `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`;
}
