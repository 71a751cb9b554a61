import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ceilingDefines, groupedRechargeScript, missingStatements, partakeScript, pgbenchStatement, productionStatements, rechargeScript } from '../../bench/scenarios/ceiling-sql';

const TABLES = [0, 1, 3];

test('the partake ceiling script holds every statement of the partake handlers verbatim', () => {
  for (const t of TABLES) {
    const statements = productionStatements('partake', t);
    assert.is(statements.length, 3);
    assert.equal(missingStatements(partakeScript(t), statements), [], `table ${t}`);
    assert.ok(statements.every((s) => s.includes(`_${String(t).padStart(3, '0')}`) || !/user_raffle_order_/.test(s)));
  }
});

test('the recharge ceiling script holds every statement of the recharge transaction verbatim, also grouped', () => {
  for (const t of TABLES) {
    const statements = productionStatements('recharge', t);
    assert.is(statements.length, 4);
    assert.equal(missingStatements(rechargeScript(t), statements), [], `table ${t}`);
    assert.equal(missingStatements(groupedRechargeScript(8)(t), statements), [], `table ${t}, grouped`);
  }
});

test('a doctored script is caught: a changed word, a dropped statement, another table', () => {
  const statements = productionStatements('partake', 1);
  const script = partakeScript(1);
  assert.equal(missingStatements(script.replace('FOR UPDATE OF a', 'FOR UPDATE'), statements), [statements[0]]);
  assert.equal(missingStatements(script.replace("SET order_state = 'used'", "SET order_state = 'cancel'"), statements), [statements[2]]);
  assert.equal(missingStatements(partakeScript(2), statements).length, 3);
  const recharge = productionStatements('recharge', 0);
  assert.equal(missingStatements(rechargeScript(0).replace('pg_advisory_xact_lock_shared', 'pg_advisory_lock_shared'), recharge), [recharge[1]]);
  // A literal where the handler has a parameter is not the production statement either.
  assert.equal(missingStatements(rechargeScript(0).replace(':skulock', '42'), recharge), [recharge[1]]);
});

test('pgbenchStatement maps each parameter to a variable and refuses a mismatch', () => {
  const vars = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
  assert.is(pgbenchStatement('SELECT $1, $2, $1, $3::jsonb, $4, $5, $6, $7, $8, $9, $10', vars), 'SELECT :a, :b, :a, :c::jsonb, :d, :e, :f, :g, :h, :i, :j;');
  assert.throws(() => pgbenchStatement('SELECT $1', ['a', 'b']), /1 parameters, 2 variables/);
  assert.throws(() => pgbenchStatement('SELECT $1, $2', ['a']), /\$2 has no pgbench variable/);
});

test('the outbox messages of the ceiling are the envelopes the workers write', () => {
  const d = ceilingDefines('UTC', new Date('2026-12-05T07:00:00Z'));
  assert.is(d.day, '2026-12-05');
  assert.is(d.month, '2026-12');
  const partake = JSON.parse(d.pmsg!);
  assert.is(partake.id, 'partake.created:123456789012');
  assert.is(partake.timestamp, Date.parse('2026-12-05T07:00:00Z'));
  assert.is(partake.data.orderId, '123456789012');
  assert.match(JSON.parse(d.rmsg!).id, /^[0-9a-f-]{36}$/);
});

test.run();
