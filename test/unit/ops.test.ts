import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { registry } from '../../infra/metrics';

/** docs/ops: every metric the dashboard and the alert rules query exists (or is named as coming). promtool checks the rest in CI. */
const root = path.resolve(import.meta.dirname, '../..');
const FUNCTIONS = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'irate', 'increase', 'histogram_quantile', 'by', 'without', 'on', 'ignoring', 'and', 'or', 'unless', 'abs', 'clamp_min']);
/** Added by the coordinator's consumer and circuit work (issue 17), and RabbitMQ's and Prometheus' own. */
const COMING_OR_EXTERNAL = ['aq_consumer_active', 'aq_shard_circuit_open', 'rabbitmq_detailed_queue_messages', 'up'];

export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '');
  return [...new Set((bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((t) => !FUNCTIONS.has(t)))];
}

async function known(): Promise<Set<string>> {
  const names = new Set(COMING_OR_EXTERNAL);
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

test('the metric-name reader finds names and ignores functions, labels and ranges', () => {
  assert.equal(metricNames('histogram_quantile(0.95, sum by (le, queue) (rate(aq_handler_duration_seconds_bucket{queue="a_b"}[5m])))'), ['aq_handler_duration_seconds_bucket']);
  assert.equal(metricNames('max by (shard) (aq_outbox_lag_seconds) > 120'), ['aq_outbox_lag_seconds']);
});

test('dashboard: valid JSON, unique panel ids, every queried metric exists', async () => {
  const dash = JSON.parse(fs.readFileSync(path.join(root, 'docs/ops/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ id: number; targets: Array<{ expr: string }> }> };
  const names = await known();
  assert.is(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length);
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 10);
  for (const e of exprs) for (const n of metricNames(e)) assert.ok(names.has(n), `${n} in ${e}`);
  assert.not.ok(names.has('aq_outbox_lag'), 'a wrong name is not known');
});

test('alert rules: the five asked for are there and query metrics that exist', async () => {
  const doc = YAML.parse(fs.readFileSync(path.join(root, 'docs/ops/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const rules = doc.groups.flatMap((g) => g.rules);
  const names = await known();
  for (const a of ['OutboxLagHigh', 'OutboxDeadTasks', 'DeadLetters', 'ConsumerMissing', 'ShardCircuitOpen'])
    assert.ok(
      rules.some((r) => r.alert === a),
      a,
    );
  for (const r of rules) for (const n of metricNames(r.expr)) assert.ok(names.has(n), `${r.alert}: ${n}`);
});

test.run();
