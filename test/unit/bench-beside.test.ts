import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuRows, type CpuSpan } from '../../bench/cpu';
import { besideBrokerLines } from '../../bench/report';

const span = (name: string, kind: CpuSpan['kind'], scenario: CpuSpan['scenario'], concurrency: number | undefined, postgres: number, messages = 1000): CpuSpan => ({
  name,
  kind,
  scenario,
  ...(concurrency !== undefined ? { concurrency } : {}),
  messages,
  seconds: 5,
  cpu: { postgres },
  readMs: 1,
});

test('the DB ceiling beside the broker ceiling is held against the pipeline at the same C, apart from the ceiling alone', () => {
  const rows = cpuRows([
    span('partake C=16', 'pipeline', 'partake', 16, 1.0),
    span('db ceiling partake C=16', 'db ceiling', 'partake', 16, 0.9),
    span('db ceiling partake C=16 beside the broker ceiling', 'db ceiling beside broker', 'partake', 16, 1.5),
    span('partake C=64', 'pipeline', 'partake', 64, 0.8),
    span('db ceiling partake C=64', 'db ceiling', 'partake', 64, 2.4),
  ]);
  const c16 = rows.find((r) => r.scenario === 'partake' && r.concurrency === 16)!;
  assert.is(c16.dbCeiling?.postgresMs, 0.9);
  assert.is(c16.postgresCeilingOverPipeline, 0.9);
  assert.is(c16.dbCeilingBesideBroker?.postgresMs, 1.5);
  assert.is(c16.postgresBesideBrokerOverPipeline, 1.5);
  const c64 = rows.find((r) => r.scenario === 'partake' && r.concurrency === 64)!;
  assert.is(c64.dbCeilingBesideBroker, undefined);
  assert.is(c64.postgresBesideBrokerOverPipeline, undefined);
  const lines = besideBrokerLines(rows);
  assert.is(lines.length, 2);
  assert.ok(lines[0]!.includes('1.50 ms of PostgreSQL CPU per transaction (alone 0.90); ceiling ÷ pipeline 1.50× (alone 0.90×)'), lines[0]);
  // Cheapest: the beside ceiling's only level (1.5) against the pipeline's cheapest (0.8 at C=64).
  assert.ok(lines[1]!.endsWith("1.50 ms (C=16) against the pipeline's 0.80 ms: ceiling ÷ pipeline 1.88×"), lines[1]);
});

test('recharge: each ceiling level with its own beside-broker level', () => {
  const rows = cpuRows([
    span('recharge', 'pipeline', 'recharge', undefined, 0.6),
    span('db ceiling recharge C=1', 'db ceiling', 'recharge', 1, 0.4),
    span('db ceiling recharge C=16', 'db ceiling', 'recharge', 16, 0.7),
    span('db ceiling recharge C=1 beside', 'db ceiling beside broker', 'recharge', 1, 0.5),
    span('db ceiling recharge C=16 beside', 'db ceiling beside broker', 'recharge', 16, 0.9),
  ]).filter((r) => r.scenario === 'recharge');
  assert.equal(
    rows.map((r) => [r.dbCeiling?.concurrency, r.dbCeilingBesideBroker?.concurrency, r.postgresBesideBrokerOverPipeline]),
    [
      [1, 1, 0.833],
      [16, 16, 1.5],
    ],
  );
});

test.run();
