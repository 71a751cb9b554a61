import type { ConsumeMessage } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codePoints, idProblem } from '../../domain/ids';
import { validateCatalog } from '../../domain/catalog';
import { parseAccountRequest, parseHistoryRequest, parseOrderRequest } from '../../workers/partake/message';
import { parseBehavior, parseRecharge } from '../../workers/recharge/message';
import { aDelivery, permanentReason } from '../support/deliveries';

/** Printable ids a real caller may send: every one is stored verbatim. */
export const ODD_IDS = [
  "o'brien",
  'say "hi"',
  'a;b',
  'back\\slash',
  '`tick`',
  "x'; DROP TABLE raffle_activity_account; --",
  "Robert'); DELETE FROM task;--",
  '张三',
  '用户😀',
  '👨‍👩‍👧‍👦',
  'café',
  ' leading space',
  '%_wildcard_%',
  '$1',
  'a'.repeat(128),
  '😀'.repeat(128),
];

test('every printable id passes, up to 128 code points (an emoji is one)', () => {
  for (const id of ODD_IDS) assert.is(idProblem(id), undefined, id);
  assert.is(codePoints('😀'.repeat(128)), 128);
  assert.is('😀'.repeat(128).length, 256);
});

test('empty, over 128, control characters and lone surrogates are refused with the reason', () => {
  assert.match(idProblem('')!, 'empty');
  assert.match(idProblem('a'.repeat(129))!, 'over 128');
  assert.match(idProblem('😀'.repeat(129))!, 'over 128');
  for (const c of ['\u0000', '\u0007', '\n', '\t', '\u001f', '\u007f', '\u0085', '\u009f']) assert.match(idProblem(`a${c}b`)!, 'control character', JSON.stringify(c));
  assert.match(idProblem('a\u0000b')!, 'U+0000');
  assert.match(idProblem('a\ud800b')!, 'lone surrogate');
  assert.match(idProblem('\udc00')!, 'lone surrogate');
  assert.match(idProblem(7)!, 'string');
  // Not control characters: no-break space, zero-width joiner, right-to-left mark, U+FFFD.
  for (const c of ['\u00a0', '\u200d', '\u200f', '\ufffd']) assert.is(idProblem(`a${c}b`), undefined, JSON.stringify(c));
});

test('the same rule on every queue: recharge, behavior, partake, query, use, cancel, history', () => {
  for (const id of ODD_IDS) {
    assert.equal(parseRecharge(aDelivery({ userId: id, sku: 1, outBusinessNo: id })), { userId: id, sku: 1, outBusinessNo: id, payType: 'free', payAmount: '0' });
    assert.equal(parseBehavior(aDelivery({ userId: id, behavior: id, outBusinessNo: id })), { userId: id, behavior: id, outBusinessNo: id });
    assert.equal(parseAccountRequest(aDelivery({ userId: id, activityId: 1 })), { userId: id, activityId: 1 });
    assert.equal(parseOrderRequest(aDelivery({ userId: id, orderId: '1' })), { userId: id, orderId: '1' });
    assert.equal(parseHistoryRequest(aDelivery({ userId: id, activityId: 1 })).userId, id);
  }
  const bad = 'a\u0001b';
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: bad, sku: 1, outBusinessNo: 'o' }))),
    /userId .*control character/,
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ userId: 'u', sku: 1, outBusinessNo: bad }))),
    /outBusinessNo .*control character/,
  );
  assert.match(
    permanentReason(() => parseBehavior(aDelivery({ userId: 'u', behavior: bad, outBusinessNo: 'o' }))),
    /behavior .*control character/,
  );
  assert.match(
    permanentReason(() => parseBehavior(aDelivery({ userId: 'u', behavior: 'b'.repeat(129), outBusinessNo: 'o' }))),
    'behavior is over 128',
  );
  assert.match(
    permanentReason(() => parseAccountRequest(aDelivery({ userId: bad, activityId: 1 }))),
    /userId .*control character/,
  );
  assert.match(
    permanentReason(() => parseOrderRequest(aDelivery({ userId: '', orderId: '1' }))),
    /userId .*empty/,
  );
  assert.match(
    permanentReason(() => parseHistoryRequest(aDelivery({ userId: 'u\ud800', activityId: 1 }))),
    /userId .*lone surrogate/,
  );
  assert.match(
    permanentReason(() => parseRecharge(aDelivery({ sku: 1, outBusinessNo: 'o' }))),
    /^userId /,
  );
});

test('a body that is not valid UTF-8 is refused (not stored with U+FFFD in place of what was sent)', () => {
  const raw = Buffer.concat([Buffer.from('{"userId":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('","activityId":1}')]);
  const m = { content: raw, properties: { headers: {} }, fields: {} } as unknown as ConsumeMessage;
  assert.match(
    permanentReason(() => parseAccountRequest(m)),
    'UTF-8',
  );
});

test('catalog behaviors follow the id rule (up to 128 characters, any printable Unicode)', () => {
  const catalog = (behavior: unknown) => ({ behaviorRebates: [{ behavior, sku: 1, desc: '', state: 'open' }] });
  const known = { activityIds: new Set<number>(), activityCountIds: new Set<number>(), skus: new Set([1]) };
  assert.ok(validateCatalog(catalog('签到😀'), known).ok);
  assert.ok(validateCatalog(catalog('b'.repeat(128)), known).ok);
  const long = validateCatalog(catalog('b'.repeat(129)), known);
  assert.ok(!long.ok && long.problems[0]!.includes('behaviorRebates[0].behavior is over 128'));
  const ctl = validateCatalog(catalog('a\nb'), known);
  assert.ok(!ctl.ok && ctl.problems[0]!.includes('control character'));
});

test('history request: limit 1..100 (default 20), before in epoch ms, anything else refused', () => {
  assert.equal(parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1 })), { userId: 'u', activityId: 1, limit: 20 });
  assert.equal(parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1, limit: 100, before: 1_700_000_000_000 })), { userId: 'u', activityId: 1, limit: 100, before: 1_700_000_000_000 });
  for (const limit of [0, 101, 1.5, '5'])
    assert.match(
      permanentReason(() => parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1, limit }))),
      'limit',
    );
  for (const before of ['yesterday', '2026-05-10T08:00:00.000Z', {}, true, 1e20, -1])
    assert.match(
      permanentReason(() => parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1, before }))),
      'before',
    );
});

test.run();
