import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { asyncApi } from '../../infra/contract/documents';
import { CONTRACT_DIR, asyncApiProblems, expectedFiles, staleFiles, writeFiles } from '../../infra/contract/generate';
import {
  AccountPayload,
  BehaviorPayload,
  HistoryPayload,
  OrderPayload,
  RechargePayload,
  ReplayPayload,
  parseAccountRequest,
  parseHistoryRequest,
  parseRechargeRequest,
  parseReplayRequest,
} from '../../infra/contract/requests';
import { PartakeReply } from '../../infra/contract/replies';
import { QUEUES, TOPICS } from '../../infra/topology';
import { aDelivery, permanentReason } from '../support/deliveries';

const emoji = '😀';
/** [id, accepted?]: the id rule of contract §5.1 at its edges. */
const IDS: Array<[string, boolean]> = [
  ['u', true],
  ['x'.repeat(128), true],
  [emoji.repeat(128), true], // 256 UTF-16 units, 128 code points
  ['用户-' + emoji + '\'; DROP TABLE x; --\\"', true],
  ['with space', true],
  ['\u0020\u007e\u00a0\u00ff', true], // printable neighbours of the control ranges
  ['', false],
  ['x'.repeat(129), false],
  [emoji.repeat(129), false],
  ['a\u0000', false],
  ['a\u001f', false],
  ['a\u007f', false],
  ['a\u0085', false],
  ['a\u009f', false],
  ['a\ud800', false], // lone high surrogate
  ['\udc00a', false], // lone low surrogate
  [`${emoji[1]}${emoji[0]}`, false], // halves in the wrong order
];

test('ids: 1-128 code points of printable Unicode, taken verbatim; the reason names the field', () => {
  for (const [id, ok] of IDS) {
    for (const name of ['userId', 'outBusinessNo'] as const) {
      const body = { userId: 'u', sku: 1, outBusinessNo: 'o', [name]: id };
      if (ok) assert.is(parseRechargeRequest(aDelivery(body))[name], id, JSON.stringify(id));
      else
        assert.match(
          permanentReason(() => parseRechargeRequest(aDelivery(body))),
          new RegExp(`^${name} `),
          JSON.stringify(id),
        );
    }
  }
  assert.is(
    permanentReason(() => parseRechargeRequest(aDelivery({ userId: 'x'.repeat(129), sku: 1, outBusinessNo: 'o' }))),
    'userId is over 128 characters',
  );
  assert.is(
    permanentReason(() => parseRechargeRequest(aDelivery({ userId: 'a\u0001', sku: 1, outBusinessNo: 'o' }))),
    'userId holds a control character or a lone surrogate',
  );
  assert.is(
    permanentReason(() => parseRechargeRequest(aDelivery({ userId: 7, sku: 1, outBusinessNo: 'o' }))),
    'userId must be a non-empty string',
  );
  assert.is(
    permanentReason(() => parseAccountRequest(aDelivery({ userId: 'u', activityId: '100301' }))),
    'activityId must be a positive whole number',
  );
  assert.is(
    permanentReason(() => parseAccountRequest(aDelivery({ userId: 'u' }))),
    'activityId must be a positive whole number',
  );
});

test('history: limit 1..100 defaulting to 20, before in epoch ms', () => {
  assert.equal(parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1 })), { userId: 'u', activityId: 1, limit: 20 });
  assert.equal(parseHistoryRequest(aDelivery({ id: 'm', data: { userId: 'u', activityId: 1, limit: 100, before: 1_780_000_000_000 } })), {
    userId: 'u',
    activityId: 1,
    limit: 100,
    before: 1_780_000_000_000,
  });
  for (const limit of [0, 101, 1.5, '5'])
    assert.match(
      permanentReason(() => parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1, limit }))),
      /^limit /,
    );
  assert.match(
    permanentReason(() => parseHistoryRequest(aDelivery({ userId: 'u', activityId: 1, before: -1 }))),
    /^before /,
  );
});

test('replay: exactly one of taskIds or state', () => {
  assert.equal(parseReplayRequest(aDelivery({ taskIds: [1, '2:7', 'partake.created:1'] })), { ids: [1, '2:7', 'partake.created:1'] });
  assert.equal(parseReplayRequest(aDelivery({ state: 'dead' })), { state: 'dead' });
  assert.is(
    permanentReason(() => parseReplayRequest(aDelivery({}))),
    'give exactly one of taskIds or state',
  );
  assert.is(
    permanentReason(() => parseReplayRequest(aDelivery({ taskIds: [1], state: 'dead' }))),
    'give exactly one of taskIds or state',
  );
  assert.is(
    permanentReason(() => parseReplayRequest(aDelivery({ state: 'create' }))),
    'state must be "fail" or "dead"',
  );
  assert.is(
    permanentReason(() => parseReplayRequest(aDelivery({ taskIds: [] }))),
    'taskIds must be a non-empty array',
  );
  assert.match(
    permanentReason(() => parseReplayRequest(aDelivery({ taskIds: [1, 0] }))),
    /^taskIds\[1\] /,
  );
  assert.is(
    permanentReason(() => parseReplayRequest(aDelivery({ taskIds: Array.from({ length: 1001 }, (_, i) => i + 1) }))),
    'taskIds has over 1000 entries',
  );
});

/** The checked-in JSON Schema, read by a separate validator, must agree with the zod schema on every sample. */
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
const fileSchema = (p: string) => ajv.compile(JSON.parse(fs.readFileSync(path.join(CONTRACT_DIR, 'schemas', p), 'utf8')));

test('generated JSON Schema and zod agree on good and bad samples', () => {
  const cases: Array<[string, { safeParse(v: unknown): { success: boolean } }, unknown[]]> = [
    [
      `requests/${QUEUES.recharge}.json`,
      RechargePayload,
      [
        ...IDS.map(([id]) => ({ userId: id, sku: 9011, outBusinessNo: 'o' })),
        { userId: 'u', sku: 9011, outBusinessNo: 'o', payType: 'cash', payAmount: '12.50' },
        { userId: 'u', sku: 9011, outBusinessNo: 'o', payType: 'gold' },
        { userId: 'u', sku: 9011, outBusinessNo: 'o', payAmount: '-1' },
        { userId: 'u', sku: '9011', outBusinessNo: 'o' },
        { userId: 'u', sku: 0, outBusinessNo: 'o' },
        { userId: 'u', sku: 1.5, outBusinessNo: 'o' },
        { userId: 'u', sku: 1 },
      ],
    ],
    [`requests/${QUEUES.behavior}.json`, BehaviorPayload, IDS.map(([id]) => ({ userId: 'u', behavior: id, outBusinessNo: 'd' }))],
    [`requests/${QUEUES.partake}.json`, AccountPayload, [{ userId: 'u', activityId: 1 }, { userId: 'u', activityId: -1 }, { userId: 'u' }, { userId: 'u', activityId: 1, extra: true }]],
    [
      `requests/${QUEUES.raffleOrderCancel}.json`,
      OrderPayload,
      [
        { userId: 'u', orderId: '123' },
        { userId: 'u', orderId: '' },
        { userId: 'u', orderId: 'x'.repeat(33) },
      ],
    ],
    [`requests/${QUEUES.accountHistory}.json`, HistoryPayload, [0, 1, 100, 101].map((limit) => ({ userId: 'u', activityId: 1, limit }))],
    [`requests/${QUEUES.taskReplay}.json`, ReplayPayload, [{ taskIds: [1] }, { state: 'fail' }, {}, { taskIds: [1], state: 'dead' }, { taskIds: [] }]],
    [
      `replies/${QUEUES.partake}.json`,
      PartakeReply,
      [
        { code: '0000', info: 'success', data: { orderId: '1', userId: 'u', activityId: 1, activityName: 'a', strategyId: 2, orderTime: '2026-06-15T12:00:00.000Z', orderState: 'create' } },
        { code: '0000', info: 'success', data: { orderId: '1', userId: 'u', activityId: 1, activityName: 'a', strategyId: 2, orderTime: 'yesterday', orderState: 'create' } },
        { code: 'ERR_BIZ_006', info: 'no account' },
        { code: 'ERR_BIZ_005', info: 'not a partake code' },
        { code: '0002', info: 'x', extra: 1 },
      ],
    ],
  ];
  let refused = 0;
  for (const [file, schema, samples] of cases) {
    const validate = fileSchema(file);
    for (const s of samples) {
      const z = schema.safeParse(s).success;
      assert.is(validate(s), z, `${file} ${JSON.stringify(s)}: zod says ${z}`);
      if (!z) refused++;
    }
  }
  assert.ok(refused >= 20, `the samples include bad ones (${refused})`);
});

test('inbound JSON Schema takes the bare payload and the envelope', () => {
  const validate = fileSchema(`requests/${QUEUES.partake}.json`);
  assert.ok(validate({ userId: 'u', activityId: 1 }));
  assert.ok(validate({ id: 'm1', timestamp: 1, data: { userId: 'u', activityId: 1 } }));
  assert.not.ok(validate({ id: 'm1', timestamp: 1, data: { userId: '', activityId: 1 } }));
});

test('AsyncAPI: valid 3.0.0, names every queue and routing key of the topology; a broken document is refused', () => {
  const doc = asyncApi('0.0.0') as { channels: Record<string, { address: string | null }> };
  assert.equal(asyncApiProblems(doc), []);
  const addresses = Object.values(doc.channels).map((c) => c.address);
  for (const q of Object.values(QUEUES)) assert.ok(addresses.includes(q), q);
  for (const t of Object.values(TOPICS)) assert.ok(addresses.includes(t), t);
  assert.ok(asyncApiProblems({ ...doc, asyncapi: '9.9.9' }).length > 0);
  assert.ok(asyncApiProblems({ ...doc, channels: { x: { address: 5 } } }).length > 0);
  const { info: _i, ...noInfo } = doc as Record<string, unknown>;
  assert.ok(asyncApiProblems(noInfo).length > 0);
});

test('staleness check: reports a changed, a missing and an extra file; clean after writing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-contract-'));
  try {
    const want = expectedFiles('0.0.0');
    assert.is(staleFiles(dir, want).length, want.size);
    writeFiles(dir, want);
    assert.equal(staleFiles(dir, want), []);
    fs.appendFileSync(path.join(dir, 'asyncapi.yaml'), '# edited\n');
    fs.rmSync(path.join(dir, `schemas/events/${TOPICS.partakeCreated}.json`));
    fs.writeFileSync(path.join(dir, 'schemas/old.json'), '{}');
    assert.equal(staleFiles(dir, want).sort(), ['missing: schemas/events/partake.created.json', 'not generated: schemas/old.json', 'stale: asyncapi.yaml']);
    writeFiles(dir, want);
    assert.equal(staleFiles(dir, want), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
