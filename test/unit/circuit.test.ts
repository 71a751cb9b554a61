import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { circuit } from '../../infra/circuit';

test('closed lets every call through; an outage opens it; after the pause one probe goes', () => {
  const changes: string[] = [];
  const c = circuit('shard:1', { minOpenMs: 100, maxOpenMs: 800 }, (s) => changes.push(s));
  assert.ok(c.allow(0) && c.allow(0));
  c.failed(1_000);
  assert.is(c.state(1_050), 'open');
  assert.not.ok(c.allow(1_050), 'fails fast while open');
  assert.is(c.state(1_100), 'half-open');
  assert.ok(c.allow(1_100), 'the probe');
  assert.not.ok(c.allow(1_100), 'only one probe at a time');
  c.succeeded();
  assert.is(c.state(1_101), 'closed');
  assert.ok(c.allow(1_101));
  assert.equal(changes, ['open', 'half-open', 'closed']);
});

test('a failed probe opens it again for twice as long, capped', () => {
  const c = circuit('shard:2', { minOpenMs: 100, maxOpenMs: 300 }, () => undefined);
  c.failed(0);
  assert.ok(c.allow(100));
  c.failed(100);
  assert.not.ok(c.allow(299), 'open for 200 ms now');
  assert.ok(c.allow(300));
  c.failed(300);
  assert.not.ok(c.allow(599));
  assert.ok(c.allow(600), 'capped at 300 ms');
  c.succeeded();
  c.failed(1_000);
  assert.ok(c.allow(1_100), 'success resets the pause');
});

test.run();
