import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Results } from '../../bench/report';
import { compareMarkdown, summaryMarkdown } from '../../bench/summary';

/** A results file reduced to what the summary reads: database CPU per message at C=16. */
function run(pipelineMs: number, ceilingMs: number): Results {
  return {
    meta: { date: '2026-12-05T08:00:00.000Z', command: 'npm run bench', options: {}, machine: {} },
    cpu: {
      clockTicks: 100,
      spans: [],
      perMessage: [
        {
          scenario: 'partake',
          concurrency: 16,
          pipeline: { messages: 1, seconds: 1, ms: { postgres: pipelineMs } },
          dbCeiling: { transactions: 1, seconds: 1, postgresMs: ceilingMs },
          postgresCeilingOverPipeline: ceilingMs / pipelineMs,
        },
      ],
    },
  };
}

const line = (md: string, name: string) => md.split('\n').find((l) => l.startsWith(`| ${name} |`))!;

test('each run, the spread and the goal: reached only when every run reaches it', () => {
  const good = summaryMarkdown([run(0.5, 1), run(0.6, 1.2), run(0.4, 0.8)]);
  assert.is(line(good, 'partake: database CPU, ceiling ÷ pipeline, C=16'), '| partake: database CPU, ceiling ÷ pipeline, C=16 | 2.00 | 2.00 | 2.00 | 2.00 – 2.00 | ≥ 1.5 | **yes** |');
  const mixed = summaryMarkdown([run(0.5, 1), run(1, 1), run(2, 1)]);
  assert.match(line(mixed, 'partake: database CPU, ceiling ÷ pipeline, C=16'), /\| 2\.00 \| 1\.00 \| 0\.50 \| 0\.50 – 2\.00 \| ≥ 1\.5 \| in some runs only \|$/);
  const bad = summaryMarkdown([run(2, 1), run(2, 1)]);
  assert.match(line(bad, 'partake: database CPU, ceiling ÷ pipeline, C=16'), /\*\*no\*\* \|$/);
  assert.match(line(bad, 'partake: database CPU, ceiling ÷ pipeline, C=64'), /not measured in every run \|$/);
});

test("an A/B comparison: each side's runs and spread, only figures some run measured", () => {
  const md = compareMarkdown([run(0.5, 1), run(0.4, 1)], [run(0.25, 1), run(0.2, 1), run(0.3, 0.9)]);
  assert.is(
    line(md, 'partake: PostgreSQL CPU ms per message, pipeline C=16'),
    '| partake: PostgreSQL CPU ms per message, pipeline C=16 | 0.50 / 0.40 | 0.25 / 0.20 / 0.30 | 0.40 – 0.50 | 0.20 – 0.30 |',
  );
  assert.is(line(md, 'partake: database CPU, ceiling ÷ pipeline, C=16'), '| partake: database CPU, ceiling ÷ pipeline, C=16 | 2.00 / 2.50 | 4.00 / 5.00 / 3.00 | 2.00 – 2.50 | 3.00 – 5.00 |');
  assert.not.ok(line(md, 'partake: database CPU, ceiling ÷ pipeline, C=64'), 'measured by no run: left out');
  assert.match(md, /^A: 2026-12-05T08:00Z, 2026-12-05T08:00Z; B: /);
  assert.not.ok(md.includes('peak RSS, MB:'), 'no process sampled: no RSS rows');
});

test("an A/B comparison shows each process's peak RSS, a dash where a run has none", () => {
  const withRss = (peaks: Record<string, number>): Results => ({ ...run(0.5, 1), rss: { peaks, phases: {} } });
  const md = compareMarkdown([withRss({ supervisor: 101.4, partake: 135 })], [withRss({ supervisor: 92.1 }), withRss({ supervisor: 89.7, partake: 140 })]);
  assert.is(line(md, 'peak RSS, MB: supervisor'), '| peak RSS, MB: supervisor | 101 | 92 / 90 | 101 – 101 | 90 – 92 |');
  assert.is(line(md, 'peak RSS, MB: partake'), '| peak RSS, MB: partake | 135 | – / 140 | 135 – 135 | 140 – 140 |');
});

test('a run is labelled with its commit, and with +changes when the checkout had uncommitted ones', () => {
  const at = (commit: string): Results => ({ ...run(0.5, 1), meta: { ...run(0.5, 1).meta, commit } });
  const md = compareMarkdown([at('f144e6bdea98c48a8fd6fa9de4c02ad0872df673')], [at('f144e6bdea98c48a8fd6fa9de4c02ad0872df673+changes')]);
  assert.match(md, /^A: 2026-12-05T08:00Z at f144e6b; B: 2026-12-05T08:00Z at f144e6b\+changes;/);
});

test.run();
