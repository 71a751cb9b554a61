import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMITS, byTable, walAttribution } from '../../bench/db-work';
import { walByTableTable, type DbWorkRow } from '../../bench/report';
import { partakeScript, rechargeScript, statementsOf } from '../../bench/scenarios/ceiling-sql';

// pg_waldump 15 lines: database 16400 is ours, 5 is another one.
const LINES = [
  'rmgr: Heap        len (rec/tot):     54/   734, tx:      25869, lsn: 0/2F401558, prev 0/2F401530, desc: INSERT off 8 flags 0x01, blkref #0: rel 1663/16400/2615 blk 0 FPW',
  'rmgr: Btree       len (rec/tot):     53/    53, tx:      25869, lsn: 0/2F401838, prev 0/2F401558, desc: INSERT_LEAF off 3, blkref #0: rel 1663/16400/2684 blk 1',
  'rmgr: Heap        len (rec/tot):    127/   127, tx:      25870, lsn: 0/2F4019F0, prev 0/2F401928, desc: INSERT off 9 flags 0x00, blkref #0: rel 1663/5/2615 blk 0',
  'rmgr: Transaction len (rec/tot):     34/    34, tx:      25870, lsn: 0/2F401A70, prev 0/2F4019F0, desc: COMMIT 2026-12-05 07:30:01.000001 UTC',
  'rmgr: Transaction len (rec/tot):     34/    34, tx:      25869, lsn: 0/2F401A98, prev 0/2F401A70, desc: COMMIT 2026-12-05 07:30:01.000002 UTC',
  'rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/2F401AC0, prev 0/2F401A98, desc: RUNNING_XACTS nextXid 25871 latestCompletedXid 25870 oldestRunningXid 25871',
  'rmgr: Heap2       len (rec/tot):     59/    59, tx:          0, lsn: 0/2F401B00, prev 0/2F401AC0, desc: PRUNE latestRemovedXid 25000 nredirected 0 ndead 1, blkref #0: rel 1663/16400/16500 blk 7',
];

test("WAL of our databases: their block records, their transactions' commits, full-page images apart", () => {
  const acc = walAttribution(new Set(['16400']));
  for (const l of LINES) acc.add(l);
  assert.equal(acc.result(), {
    bytes: 734 + 53 + 34 + 59,
    fpi: 734 - 54,
    records: 7,
    commits: 1,
    rowsWritten: 1,
    hotUpdates: 0,
    rowsLocked: 0,
    byRelation: { '16400/2615': 54, '16400/2684': 53, '16400/16500': 59, [COMMITS]: 34 },
  });
});

test("another database's records and commits are not ours; other lines are ignored", () => {
  const acc = walAttribution(new Set(['16401']));
  for (const l of [...LINES, 'pg_waldump: error: error in WAL record at 0/2F401B00: invalid record length', '']) acc.add(l);
  assert.equal(acc.result(), { bytes: 0, fpi: 0, records: 7, commits: 0, rowsWritten: 0, hotUpdates: 0, rowsLocked: 0, byRelation: {} });
  const other = walAttribution(new Set(['5']));
  for (const l of LINES) other.add(l);
  assert.is(other.result().bytes, 127 + 34);
});

test('rows written, HOT updates and locks are counted by record type', () => {
  const acc = walAttribution(new Set(['16400']));
  const rec = (tx: number, what: string) =>
    `rmgr: ${what.startsWith('MULTI') ? 'Heap2' : 'Heap'}        len (rec/tot):     60/    60, tx:      ${tx}, lsn: 0/2F401558, prev 0/2F401530, desc: ${what}, blkref #0: rel 1663/16400/16500 blk 3`;
  for (const w of [
    'INSERT off 8 flags 0x00',
    'INSERT+INIT off 1 flags 0x00',
    'HOT_UPDATE off 2 xmax 1 flags 0x10 ; new off 9 xmax 0',
    'UPDATE off 3 xmax 1 flags 0x00 ; new off 4 xmax 0',
    'DELETE off 5 flags 0x00 KEYS_UPDATED',
    'LOCK off 6: xid 7: flags 0x00 LOCK_ONLY EXCL_LOCK',
    'MULTI_INSERT 3 tuples flags 0x02',
  ])
    acc.add(rec(9, w));
  acc.add('rmgr: Transaction len (rec/tot):     34/    34, tx:          9, lsn: 0/2F401A98, prev 0/2F401A70, desc: COMMIT 2026-12-05 07:30:01.000002 UTC');
  const r = acc.result();
  assert.equal([r.rowsWritten, r.hotUpdates, r.rowsLocked, r.commits], [5 + 3, 1, 1, 1]);
});

test('WAL by table: indexes, id sequences and split tables with their table, commits apart, unknown relations as other', () => {
  const names = new Map([
    ['16400/2615', 'task'],
    ['16400/2684', 'task'],
    ['16401/16500', 'user_raffle_order_001'],
    ['16401/16501', 'user_raffle_order_003'],
    ['16401/16502', 'user_raffle_order_003_id_seq'],
  ]);
  const per = (v: number) => v / 2;
  assert.equal(byTable({ '16400/2615': 54, '16400/2684': 53, '16401/16500': 40, '16401/16501': 16, '16401/16502': 4, '16400/99': 8, [COMMITS]: 34 }, names, per), {
    task: 53.5,
    user_raffle_order: 30,
    other: 4,
    [COMMITS]: 17,
  });
});

test("the by-table report: C = 16 paired, the bound from the ceiling's business rows", () => {
  const row = (side: DbWorkRow['side'], concurrency: number, walByTable: Record<string, number>): DbWorkRow => ({
    side,
    scenario: 'partake',
    concurrency,
    messages: 10,
    serverWalBytes: 0,
    walByTable,
  });
  const lines = walByTableTable([
    row('pipeline', 1, { task: 999 }),
    row('pipeline', 16, { task: 1210, user_raffle_order: 900, [COMMITS]: 30 }),
    row('db ceiling', 16, { task: 810, user_raffle_order: 600, raffle_activity_account: 300, [COMMITS]: 90 }),
  ]);
  assert.ok(lines.includes('| table | partake pipeline C=16 | partake db ceiling C=16 |'), lines.join('\n'));
  assert.ok(lines.includes('| `task` | 1210 | 810 |'));
  assert.ok(lines.includes('| `raffle_activity_account` | 0 | 300 |'));
  assert.is(lines.filter((l) => l.startsWith('| ')).pop(), '| all | 2140 | 1800 |');
  assert.ok(lines.indexOf(`| ${COMMITS} | 30 | 90 |`) > lines.indexOf('| `user_raffle_order` | 900 | 600 |'), 'commit records last');
  const bound = lines.find((l) => l.startsWith('- partake:'));
  assert.ok(bound?.includes('business rows (all but `task` and the commit records) 900 bytes of its 1800'), bound);
  assert.ok(bound?.includes('≤ 1200 bytes') && bound.includes('at most 2.00×'), bound);
  assert.ok(bound?.includes('no completion marks and no commits, at most 1.05×'), bound);
});

test('round trips of the ceiling scripts: BEGIN and COMMIT count, \\set lines do not', () => {
  assert.is(statementsOf(partakeScript(0)), 5);
  assert.is(statementsOf(rechargeScript(2)), 6);
});

test.run();
