import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CpuSpan } from '../../bench/cpu';
import { msPerMessage, sharesOf } from '../../bench/profile';
import { profileTable } from '../../bench/report';

// `perf report --children --sort sym -g none --comm postgres` lines of a pipeline span (inclusive %, own %, symbol).
const REPORT = `# Children      Self  Symbol
    23.39%     0.13%  [.] PostgresMain
    12.96%     0.01%  [.] PortalRun
    10.85%     0.01%  [.] standard_ExecutorRun
     2.98%     0.00%  [.] CommitTransactionCommand
     2.63%     0.01%  [.] pq_getbyte
     2.33%     0.00%  [.] XLogFlush
     2.29%     0.03%  [.] standard_ExecutorStart
     0.57%     0.02%  [.] GetCachedPlan
     0.48%     0.01%  [.] standard_ExecutorEnd
     0.25%     0.25%  [.] 0x0000000000446bf2
`;

test('shares of the PostgreSQL samples by where they fall, the rest of the main loop and what lies outside it', () => {
  const s = sharesOf(REPORT, 24.43);
  assert.equal(s['executor run'], Number((10.85 / 24.43).toPrecision(3)));
  assert.equal(s['executor start and end'], Number(((2.29 + 0.48) / 24.43).toPrecision(3)));
  assert.equal(s['plan cache'], Number((0.57 / 24.43).toPrecision(3)));
  assert.equal(s.commit, Number((2.98 / 24.43).toPrecision(3)));
  assert.equal(s['of which WAL flush'], Number((2.33 / 24.43).toPrecision(3)));
  assert.equal(s['reading the client'], Number((2.63 / 24.43).toPrecision(3)));
  assert.equal(s['other in client backends'], Number(((23.39 - 10.85 - 2.29 - 0.48 - 0.57 - 2.98 - 2.63) / 24.43).toPrecision(3)));
  assert.equal(s['outside client backends'], Number(((24.43 - 23.39) / 24.43).toPrecision(3)));
  // The disjoint buckets add up to the whole (the WAL flush is inside the commit).
  const sum = s['executor run'] + s['executor start and end'] + s['plan cache'] + s.commit + s['reading the client'] + s['other in client backends'] + s['outside client backends'];
  assert.ok(Math.abs(sum - 1) < 0.01, `sum ${sum}`);
});

test('no PostgreSQL samples, or a report without the functions: no shares rather than a made-up split', () => {
  assert.equal(Object.values(sharesOf(REPORT, 0)), [0, 0, 0, 0, 0, 0, 0, 0]);
  const none = sharesOf('# nothing sampled\n', 5);
  assert.equal(none['executor run'], 0);
  assert.equal(none['outside client backends'], 1);
});

test('ms per message: the span’s PostgreSQL CPU split by the shares; none without messages or samples', () => {
  const span: CpuSpan = { name: 'partake C=16', kind: 'pipeline', scenario: 'partake', concurrency: 16, messages: 1000, seconds: 5, cpu: { postgres: 0.8 }, readMs: 1 };
  const profile = { span: span.name, samples: 3895, shares: sharesOf(REPORT, 24.43) };
  const by = msPerMessage(profile, span, 'postgres')!;
  assert.equal(by['executor run'], Number((0.8 * Number((10.85 / 24.43).toPrecision(3))).toPrecision(3)));
  assert.is(msPerMessage(profile, { ...span, messages: 0 }, 'postgres'), undefined);
  assert.is(msPerMessage({ ...profile, samples: 0 }, span, 'postgres'), undefined);
  assert.is(msPerMessage(profile, span, 'other'), undefined);
});

test('the table: one row per sampled span, its figures from the span of the same name; a span not measured shows dashes', () => {
  const span: CpuSpan = { name: 'recharge', kind: 'pipeline', scenario: 'recharge', messages: 2000, seconds: 5, cpu: { postgres: 1.6 }, readMs: 1 };
  const shares = sharesOf(REPORT, 24.43);
  const rows = profileTable(
    [
      { span: 'recharge', samples: 100, shares },
      { span: 'partake C=16', samples: 100, shares },
    ],
    [span],
  );
  assert.is(rows.length, 4);
  const run = msPerMessage({ span: 'recharge', samples: 100, shares }, span, 'postgres')!['executor run'];
  assert.ok(run > 0.3 && run < 0.4);
  assert.ok(rows[2]!.startsWith(`| recharge | 2000 | 0.80 | ${run.toFixed(2)} |`), rows[2]);
  assert.ok(rows[3]!.startsWith('| partake C=16 | – | – | – |'), rows[3]);
});

test.run();
