import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { PermanentError, TransientError, classify, sqlStateKind, transientKind } from '../../infra/errors';

const dbError = (code: string) => Object.assign(new pg.DatabaseError(`sqlstate ${code}`, 0, 'error'), { code });
const system = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
const reply = (text: string) => Object.assign(new Error(text), { name: 'ReplyError' });

test("SQLSTATE table: outages, contention, and the message's own failures", () => {
  const table: Array<[string, 'outage' | 'contention' | undefined]> = [
    ['08006', 'outage'], // connection failure
    ['08001', 'outage'], // cannot establish
    ['53300', 'outage'], // too many connections
    ['53100', 'outage'], // disk full
    ['57P01', 'outage'], // admin shutdown
    ['57P03', 'outage'], // cannot connect now (starting up)
    ['55000', 'outage'], // database not accepting connections
    ['25006', 'outage'], // read-only transaction (a standby after failover)
    ['58030', 'outage'], // io error
    ['40001', 'contention'], // serialization failure
    ['40P01', 'contention'], // deadlock
    ['55P03', 'contention'], // lock not available
    ['57014', 'contention'], // statement timeout
    ['23505', undefined], // unique violation: the message's or the code's own
    ['23514', undefined], // check violation
    ['42601', undefined], // syntax error: a bug
    ['22P02', undefined], // invalid text representation
    ['XX000', undefined], // internal error
    ['nope', undefined],
  ];
  for (const [code, kind] of table) assert.is(sqlStateKind(code), kind, code);
});

test('driver error kinds: pg DatabaseError by SQLSTATE, Node network errors, Redis replies by their code', () => {
  assert.is(transientKind(dbError('57P01')), 'outage');
  assert.is(transientKind(dbError('40P01')), 'contention');
  assert.is(transientKind(dbError('23505')), undefined);
  for (const c of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']) assert.is(transientKind(system(c)), 'outage', c);
  assert.is(transientKind(system('ENOENT')), undefined);
  for (const r of [
    'LOADING Redis is loading',
    "READONLY You can't write against a read only replica.",
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys',
    'MASTERDOWN Link with MASTER is down',
  ])
    assert.is(transientKind(reply(r)), 'outage', r);
  assert.is(transientKind(reply('NOSCRIPT No matching script')), undefined);
  assert.is(transientKind(reply('ERR wrong number of arguments')), undefined);
  // message text alone decides nothing
  assert.is(transientKind(new Error('Connection terminated unexpectedly')), undefined);
  assert.is(transientKind(new TypeError('x is undefined')), undefined);
});

test('AMQP: a close by the broker by its reply code, an operation on a closed channel; configuration errors are not outages', () => {
  const closed = (code: number, text: string) => Object.assign(new Error(`Channel closed by server: ${code} (${text})`), { code, classId: 60, methodId: 40 });
  const table: Array<[number, string, 'outage' | undefined]> = [
    [320, 'CONNECTION-FORCED', 'outage'], // node stopping
    [504, 'CHANNEL-ERROR', 'outage'],
    [505, 'UNEXPECTED-FRAME', 'outage'],
    [506, 'RESOURCE-ERROR', 'outage'],
    [541, 'INTERNAL-ERROR', 'outage'],
    [403, 'ACCESS-REFUSED', undefined], // wrong credentials or permissions: configuration
    [404, 'NOT-FOUND', undefined], // a queue or exchange missing: topology
    [406, 'PRECONDITION-FAILED', undefined], // e.g. an unknown delivery tag: a bug
  ];
  for (const [code, text, kind] of table) assert.is(transientKind(closed(code, text)), kind, `${code} ${text}`);
  const illegal = Object.assign(new Error('Channel closed'), { name: 'IllegalOperationError' });
  assert.is(transientKind(illegal), 'outage');
  assert.equal(classify(closed(320, 'CONNECTION-FORCED')), { kind: 'transient', scope: 'broker', outage: true, reason: 'Channel closed by server: 320 (CONNECTION-FORCED)' });
});

test('classify: permanent, transient with its scope (through causes), unknown', () => {
  assert.equal(classify(new PermanentError('INVALID_MESSAGE', 'sku must be a number')), { kind: 'permanent', code: 'INVALID_MESSAGE', reason: 'sku must be a number' });
  const t = classify(new TransientError('shard:2', 'outage', 'shard:2: connection lost'));
  assert.equal(t, { kind: 'transient', scope: 'shard:2', outage: true, reason: 'shard:2: connection lost' });
  const wrapped = new Error('group failed', { cause: new TransientError('redis', 'outage', 'redis: Connection is closed.') });
  assert.equal(classify(wrapped), { kind: 'transient', scope: 'redis', outage: true, reason: 'group failed' });
  assert.equal(classify(dbError('40001')), { kind: 'transient', scope: 'dependency', outage: false, reason: 'sqlstate 40001' });
  assert.equal(classify(new Error('bug')), { kind: 'unknown', reason: 'bug' });
  assert.equal(classify(new PermanentError('INVALID_JSON', 'x')).kind, 'permanent');
});

test.run();
