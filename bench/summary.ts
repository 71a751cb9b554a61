import fs from 'node:fs';
import path from 'node:path';
import { cheapestBesideBroker } from './cpu';
import { PROFILE_ABOUT, profileTable, walBound, type DbWorkRow, type Results } from './report';
import { writeBetween } from './support';

/**
 * Issue 16's figures over several full runs (their results JSON), each run's value, the spread and
 * the goal: `npm run bench -- --summarize FILE…` writes the table between the `bench:runs` markers
 * of docs/BENCHMARKS.md.
 */
type Figure = Readonly<{ name: string; goal: string; ok?: (v: number) => boolean; digits: number; of: (r: Results) => number | undefined }>;

const work = (r: Results, side: DbWorkRow['side'], scenario: DbWorkRow['scenario'], c?: number) =>
  r.dbWork?.find((x) => x.side === side && x.scenario === scenario && (c === undefined || x.concurrency === c));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);
const cpuRow = (r: Results, scenario: 'partake' | 'recharge', c: number) =>
  r.cpu?.perMessage.find((x) => x.scenario === scenario && (scenario === 'partake' ? x.concurrency === c : x.dbCeiling?.concurrency === c));
/** WAL of the recharge pipeline (one span) against the ceiling at C. */
const walRatio = (r: Results, scenario: 'partake' | 'recharge', c: number) =>
  ratio(work(r, 'db ceiling', scenario, c)?.walBytesNoFpi, work(r, 'pipeline', scenario, scenario === 'partake' ? c : undefined)?.walBytesNoFpi);
/** The best WAL ratio any outbox design could give while the business rows stay: the ceiling's WAL ÷ its business rows' (bench/report.ts). */
const walCeilingBound = (r: Results, scenario: 'partake' | 'recharge') => {
  const b = walBound(work(r, 'db ceiling', scenario, 16));
  return b && b.all / b.business;
};
/** The same with a task row per event kept (the contract's outbox): the ceiling's WAL ÷ its WAL without commit records. */
const walContractBound = (r: Results, scenario: 'partake' | 'recharge') => {
  const b = walBound(work(r, 'db ceiling', scenario, 16));
  return b && b.all / b.withTasks;
};
/** The DB ceiling beside the broker ceiling at its cheapest level ÷ the pipeline at its cheapest. */
const cheapestBeside = (r: Results, scenario: 'partake' | 'recharge') => cheapestBesideBroker(r.cpu?.perMessage ?? [], scenario)?.ceilingOverPipeline;
const atLeast = (g: number) => (v: number) => v >= g;
const atMost = (g: number) => (v: number) => v <= g;
const best = (ps: ReadonlyArray<{ throughput: number }> | undefined) => (ps?.length ? Math.max(...ps.map((p) => p.throughput)) : undefined);

export const FIGURES: readonly Figure[] = [
  { name: 'partake: PostgreSQL CPU ms per message, pipeline C=16', goal: '–', digits: 2, of: (r) => cpuRow(r, 'partake', 16)?.pipeline?.ms.postgres },
  { name: 'partake: PostgreSQL CPU ms per transaction, DB ceiling C=16', goal: '–', digits: 2, of: (r) => cpuRow(r, 'partake', 16)?.dbCeiling?.postgresMs },
  { name: 'partake: database CPU, ceiling ÷ pipeline, C=16', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => cpuRow(r, 'partake', 16)?.postgresCeilingOverPipeline },
  { name: 'partake: database CPU, ceiling ÷ pipeline, C=64', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => cpuRow(r, 'partake', 64)?.postgresCeilingOverPipeline },
  { name: 'partake: database CPU, ceiling ÷ pipeline, cheapest levels', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => r.cpu?.cheapest?.partake?.ceilingOverPipeline },
  {
    name: 'partake: database CPU, ceiling beside the broker ceiling ÷ pipeline, C=16 (both under a load of that kind)',
    goal: '–',
    digits: 2,
    of: (r) => cpuRow(r, 'partake', 16)?.postgresBesideBrokerOverPipeline,
  },
  { name: 'partake: database CPU, ceiling beside the broker ceiling ÷ pipeline, cheapest levels', goal: '–', digits: 2, of: (r) => cheapestBeside(r, 'partake') },
  { name: 'partake: WAL bytes (no full-page images), ceiling ÷ pipeline, C=16', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => walRatio(r, 'partake', 16) },
  {
    // A bound, not a result: what the goal's ratio could be at most (so no "reached" here).
    name: 'partake: WAL, ceiling ÷ pipeline at best with no outbox rows or commits at all (the ceiling ÷ its business rows), C=16',
    goal: '–',
    digits: 2,
    of: (r) => walCeilingBound(r, 'partake'),
  },
  {
    name: 'partake: WAL, ceiling ÷ pipeline at best with a task row per event but no completion marks or commits, C=16',
    goal: '–',
    digits: 2,
    of: (r) => walContractBound(r, 'partake'),
  },
  { name: 'partake: WAL bytes per message, pipeline C=16', goal: '–', digits: 0, of: (r) => work(r, 'pipeline', 'partake', 16)?.walBytesNoFpi },
  { name: 'partake: commits per message, pipeline C=16', goal: '–', digits: 2, of: (r) => work(r, 'pipeline', 'partake', 16)?.transactions },
  { name: 'partake: statements (round trips) per message, pipeline C=16', goal: '–', digits: 2, of: (r) => work(r, 'pipeline', 'partake', 16)?.statements },
  { name: 'recharge: PostgreSQL CPU ms per message, pipeline', goal: '–', digits: 2, of: (r) => cpuRow(r, 'recharge', 16)?.pipeline?.ms.postgres },
  { name: 'recharge: database CPU, ceiling ÷ pipeline, ceiling C=16', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => cpuRow(r, 'recharge', 16)?.postgresCeilingOverPipeline },
  { name: 'recharge: database CPU, ceiling ÷ pipeline, ceiling C=64', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => cpuRow(r, 'recharge', 64)?.postgresCeilingOverPipeline },
  { name: 'recharge: database CPU, ceiling ÷ pipeline, cheapest levels', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => r.cpu?.cheapest?.recharge?.ceilingOverPipeline },
  { name: 'recharge: database CPU, ceiling beside the broker ceiling ÷ pipeline, ceiling C=16', goal: '–', digits: 2, of: (r) => cpuRow(r, 'recharge', 16)?.postgresBesideBrokerOverPipeline },
  { name: 'recharge: database CPU, ceiling beside the broker ceiling ÷ pipeline, cheapest levels', goal: '–', digits: 2, of: (r) => cheapestBeside(r, 'recharge') },
  { name: 'recharge: WAL bytes (no full-page images), ceiling C=16 ÷ pipeline', goal: '≥ 1.5', ok: atLeast(1.5), digits: 2, of: (r) => walRatio(r, 'recharge', 16) },
  {
    // A bound, not a result: what the goal's ratio could be at most (so no "reached" here).
    name: 'recharge: WAL, ceiling ÷ pipeline at best with no outbox rows or commits at all (the ceiling ÷ its business rows), C=16',
    goal: '–',
    digits: 2,
    of: (r) => walCeilingBound(r, 'recharge'),
  },
  {
    name: 'recharge: WAL, ceiling ÷ pipeline at best with a task row per event but no completion marks or commits, C=16',
    goal: '–',
    digits: 2,
    of: (r) => walContractBound(r, 'recharge'),
  },
  { name: 'recharge: commits per message, pipeline', goal: '–', digits: 2, of: (r) => work(r, 'pipeline', 'recharge')?.transactions },
  {
    name: 'partake throughput, pipeline ÷ DB ceiling, C=64',
    goal: '≥ 0.6',
    ok: atLeast(0.6),
    digits: 2,
    of: (r) => ratio(r.partake?.available ? r.partake.result.find((p) => p.concurrency === 64)?.throughput : undefined, r.ceilings?.dbPartake.find((p) => p.concurrency === 64)?.throughput),
  },
  {
    name: 'recharge throughput, pipeline ÷ best DB ceiling',
    goal: '≥ 0.5',
    ok: atLeast(0.5),
    digits: 2,
    of: (r) => ratio(r.recharge?.available ? r.recharge.result.perSecond : undefined, best(r.ceilings?.dbRecharge)),
  },
  { name: 'partake p99 ms, open loop at half of peak', goal: '≤ 50', ok: atMost(50), digits: 1, of: (r) => r.partakeHalfPeak?.latency.p99 },
  {
    name: 'outbox delay p99 ms under full load (worst of the partake and recharge runs)',
    goal: '≤ 100',
    ok: atMost(100),
    digits: 0,
    of: (r) => (r.outbox?.available ? Math.max(...Object.values(r.outbox.result.underLoad).map((l) => l.p99)) : undefined),
  },
  {
    name: 'largest worker peak RSS, MB',
    goal: '< 150',
    ok: (v) => v < 150,
    digits: 0,
    of: (r) =>
      r.rss
        ? Math.max(
            ...Object.entries(r.rss.peaks)
              .filter(([k]) => k !== 'supervisor')
              .map(([, v]) => v),
          )
        : undefined,
  },
];

const show = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** The table: one column per run, the spread (min–max), the goal and whether every run reached it. */
export function summaryMarkdown(runs: readonly Results[]): string {
  const out: string[] = [];
  out.push(`Issue 16's figures over ${runs.length} runs (${runs.map((r) => `${r.meta.date.slice(0, 16)}Z \`${r.meta.command}\``).join('; ')}):`);
  out.push('');
  out.push(`| figure | ${runs.map((_, i) => `run ${i + 1}`).join(' | ')} | spread (min – max) | goal | reached |`);
  out.push(`|---|${runs.map(() => '---:').join('|')}|---|---|---|`);
  for (const f of FIGURES) {
    const vs = runs.map((r) => f.of(r));
    const known = vs.filter((v): v is number => v !== undefined && Number.isFinite(v));
    const spread = known.length ? `${show(Math.min(...known), f.digits)} – ${show(Math.max(...known), f.digits)}` : '–';
    const reached = !f.ok ? '' : known.length < runs.length ? 'not measured in every run' : known.every(f.ok) ? '**yes**' : known.some(f.ok) ? 'in some runs only' : '**no**';
    out.push(`| ${f.name} | ${vs.map((v) => show(v, f.digits)).join(' | ')} | ${spread} | ${f.goal} | ${reached} |`);
  }
  return out.join('\n');
}

const START = '<!-- bench:runs:start -->';
const END = '<!-- bench:runs:end -->';

/**
 * Reads the results files and writes the table into docs/BENCHMARKS.md (and prints it): the runs
 * table from the runs made without `--profile` (sampling costs a few % of CPU, so those runs are
 * not the goal's figures), and each run made with it as its PostgreSQL CPU by where it goes.
 */
export function writeSummary(files: readonly string[], root: string): string {
  const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Results);
  const plain = runs.filter((r) => !r.postgresProfiles?.length);
  const profiled = runs.filter((r) => r.postgresProfiles?.length);
  const bm = path.join(root, 'docs', 'BENCHMARKS.md');
  let text = fs.readFileSync(bm, 'utf8');
  const written: string[] = [];
  const between = (start: string, end: string, body: string) => {
    const a = text.indexOf(start),
      b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error(`docs/BENCHMARKS.md has no ${start} … ${end} markers`);
    text = `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`;
    written.push(body);
  };
  if (plain.length) between(START, END, summaryMarkdown(plain));
  if (profiled.length) between(PROFILE_START, PROFILE_END, profileMarkdown(profiled));
  fs.writeFileSync(bm, text);
  return written.join('\n\n');
}

const PROFILE_START = '<!-- bench:profile:start -->';
const PROFILE_END = '<!-- bench:profile:end -->';

/** The runs made with `--profile`: each one's PostgreSQL CPU per message by where it goes. */
export function profileMarkdown(runs: readonly Results[]): string {
  const out = [PROFILE_ABOUT];
  for (const r of runs) out.push('', `Run ${r.meta.date} \`${r.meta.command}\`:`, '', ...profileTable(r.postgresProfiles ?? [], r.cpu?.spans ?? []));
  return out.join('\n');
}

/** Figures an A/B comparison adds to the goal's: the throughputs and the cost at C = 64. */
const AB_FIGURES: readonly Figure[] = [
  { name: 'partake /s, pipeline C=16', goal: '–', digits: 0, of: (r) => (r.partake?.available ? r.partake.result.find((p) => p.concurrency === 16)?.throughput : undefined) },
  { name: 'partake /s, pipeline C=64', goal: '–', digits: 0, of: (r) => (r.partake?.available ? r.partake.result.find((p) => p.concurrency === 64)?.throughput : undefined) },
  { name: 'partake: PostgreSQL CPU ms per message, pipeline C=64', goal: '–', digits: 2, of: (r) => cpuRow(r, 'partake', 64)?.pipeline?.ms.postgres },
  { name: 'recharge orders /s, pipeline', goal: '–', digits: 0, of: (r) => (r.recharge?.available ? r.recharge.result.perSecond : undefined) },
  { name: 'recharge: WAL bytes per message, pipeline', goal: '–', digits: 0, of: (r) => work(r, 'pipeline', 'recharge')?.walBytesNoFpi },
];

const runLabel = (r: Results) => `${r.meta.date.slice(0, 16)}Z${r.meta.commit ? ` at ${r.meta.commit.replace(/^([0-9a-f]{7})[0-9a-f]*/, '$1')}` : ''}`;

/**
 * Two sets of runs side by side (a hot path step's A/B): each run's value of every figure either
 * side measured (and each process's peak RSS), and each side's spread. Bounds (figures of the
 * ceiling alone) are left out.
 */
export function compareMarkdown(a: readonly Results[], b: readonly Results[]): string {
  const spread = (vs: ReadonlyArray<number | undefined>, digits: number) => {
    const known = vs.filter((v): v is number => v !== undefined && Number.isFinite(v));
    return known.length ? `${show(Math.min(...known), digits)} – ${show(Math.max(...known), digits)}` : '–';
  };
  const out = [
    `A: ${a.map(runLabel).join(', ')}; B: ${b.map(runLabel).join(', ')}; commands: ${[...new Set([...a, ...b].map((r) => `\`${r.meta.command}\``))].join(', ')}.`,
    '',
    '| figure | A, each run | B, each run | A (min – max) | B (min – max) |',
    '|---|---|---|---|---|',
  ];
  const processes = [...new Set([...a, ...b].flatMap((r) => Object.keys(r.rss?.peaks ?? {})))];
  const rss = processes.map((p): Figure => ({ name: `peak RSS, MB: ${p}`, goal: '–', digits: 0, of: (r) => r.rss?.peaks[p] }));
  for (const f of [...AB_FIGURES, ...FIGURES.filter((x) => !x.name.includes('at best')), ...rss]) {
    const va = a.map((r) => f.of(r));
    const vb = b.map((r) => f.of(r));
    if (![...va, ...vb].some((v) => v !== undefined && Number.isFinite(v))) continue;
    out.push(`| ${f.name} | ${va.map((v) => show(v, f.digits)).join(' / ')} | ${vb.map((v) => show(v, f.digits)).join(' / ')} | ${spread(va, f.digits)} | ${spread(vb, f.digits)} |`);
  }
  return out.join('\n');
}

/**
 * `npm run bench -- --compare NAME A.json … -- B.json …`: the comparison, written between the
 * markers `<!-- bench:compare:NAME:start -->` and `<!-- bench:compare:NAME:end -->` of
 * docs/BENCHMARKS.md (which must be there) and printed.
 */
export function writeComparison(name: string, aFiles: readonly string[], bFiles: readonly string[], root: string): string {
  const read = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as Results;
  const body = compareMarkdown(aFiles.map(read), bFiles.map(read));
  const [start, end] = [`<!-- bench:compare:${name}:start -->`, `<!-- bench:compare:${name}:end -->`];
  if (!writeBetween(path.join(root, 'docs', 'BENCHMARKS.md'), start, end, body)) throw new Error(`docs/BENCHMARKS.md has no ${start} … ${end} markers`);
  return body;
}
