import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countLiteral } from '../../infra/db';
import { insertTaskFrom, taskParams, taskRow } from '../../infra/outbox';

const now = new Date('2026-11-22T02:00:00Z');
const event = { topic: 'partake.created' as const, userId: 'u1', data: { orderId: 'o1' }, messageId: 'partake.created:o1' };

test('a task row: envelope id = message id, due now, or after the hold when its writer publishes it', () => {
  const plain = taskRow(event, now);
  assert.equal(plain.envelope, { id: 'partake.created:o1', timestamp: now.getTime(), data: { orderId: 'o1' } });
  assert.equal([plain.due, plain.held], [now, false]);
  const held = taskRow(event, now, 30_000);
  assert.equal([held.due.getTime() - now.getTime(), held.held], [30_000, true]);
  assert.equal(taskParams(held), ['u1', 'partake.created', 'partake.created:o1', JSON.stringify(held.envelope), held.due]);
  assert.ok(/^[0-9a-f-]{36}$/.test(taskRow({ ...event, messageId: undefined }, now).envelope.id), 'a fresh uuid without a message id');
});

test('the task insert as a CTE numbers its five parameters from the first given, in taskParams order', () => {
  const text = insertTaskFrom('o', 11, 7).replace(/\s+/g, ' ');
  assert.match(
    text,
    "INSERT INTO task (user_id, topic, message_id, message, next_attempt_at, state, create_time, update_time) SELECT $11, $12, $13, $14::jsonb, $15, 'create', $7, $7 FROM o ON CONFLICT (message_id) DO NOTHING RETURNING id",
  );
  assert.match(insertTaskFrom('a', 8, 3).replace(/\s+/g, ' '), "SELECT $8, $9, $10, $11::jsonb, $12, 'create', $3, $3 FROM a");
});

test('a row count written into a statement text is a positive integer, nothing else', () => {
  assert.is(countLiteral(1000), '1000');
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) assert.throws(() => countLiteral(bad), /positive integer/, String(bad));
});

test.run();
