import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Db, sql, type Tx } from '../../infra/db';
import { TransientError } from '../../infra/errors';
import { type Batch, batched, byKey, groupCommitter, type GroupCommitter, type Unit } from '../../infra/group-commit';
import { log } from '../../infra/log';
import { groupSize } from '../../infra/metrics';
import { openDatabases, type Databases } from '../../infra/shards';
import { createTestEnv, type TestEnv } from '../support/env';

let world: TestEnv;
let dbs: Databases;
let ds: Db;

test.before(async () => {
  world = await createTestEnv({ shards: 1 });
  dbs = await openDatabases(world.config, { poolSize: 4, name: 'group-test' });
  ds = dbs.shards[0]!.ds;
  await sql(ds, 'CREATE TABLE probe (k text NOT NULL, v int NOT NULL, txid bigint NOT NULL)');
});

test.after(async () => {
  await dbs?.close();
  await world?.cleanup();
});

test.before.each(async () => {
  await sql(ds, 'TRUNCATE probe');
});

const quiet = log.child({ test: 'group-commit' });

/** A unit that writes (k, v) and answers with its transaction id. */
function write(k: string, v: number, extra: Partial<Unit<number>> = {}): Unit<number> {
  return {
    key: k,
    async run(tx: Tx) {
      const { rows } = await sql<{ txid: string }>(tx, 'INSERT INTO probe (k, v, txid) VALUES ($1, $2, txid_current()) RETURNING txid::text', [k, v]);
      return Number(rows[0]!.txid);
    },
    ...extra,
  };
}

/** Occupies the committer's only lane until `release()`, so what is submitted meanwhile queues up. */
function blocker(g: GroupCommitter): { done: Promise<unknown>; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const done = g.run({ key: '~blocker', run: () => gate });
  return { done, release };
}

async function rows(): Promise<Array<{ k: string; v: number; txid: number }>> {
  return (await sql<{ k: string; v: number; txid: string }>(ds, 'SELECT k, v, txid::text FROM probe ORDER BY k, v')).rows.map((r) => ({ ...r, txid: Number(r.txid) }));
}

/** Groups and units counted by the `aq_group_commit_units` histogram so far. */
async function counted(): Promise<{ groups: number; units: number }> {
  const values = (await groupSize.get()).values;
  const value = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
  return { groups: value('aq_group_commit_units_count'), units: value('aq_group_commit_units_sum') };
}

test('units that queue while the lane is busy share one transaction, up to the group size', async () => {
  const before = await counted();
  const g = groupCommitter(ds, { max: 4, lanes: 1 }, quiet);
  const b = blocker(g);
  const units = Array.from({ length: 10 }, (_, i) => g.run(write(`user-${String(i).padStart(2, '0')}`, i)));
  b.release();
  const txids = await Promise.all(units);
  await b.done;
  const sizes = [...new Set(txids)].map((t) => txids.filter((x) => x === t).length);
  assert.equal(sizes, [4, 4, 2], 'ten queued units went out as groups of 4, 4 and 2');
  const stored = await rows();
  assert.is(stored.length, 10);
  assert.equal(
    stored.map((r) => r.txid),
    txids,
    'each unit answered with the transaction its row was written in',
  );
  const after = await counted();
  assert.equal({ groups: after.groups - before.groups, units: after.units - before.units }, { groups: 4, units: 11 }, 'the blocker alone, then 4 + 4 + 2');
});

test('a lone unit does not wait: with a free lane it commits at once, alone', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 2 }, quiet);
  const a = await g.run(write('a', 1));
  const b = await g.run(write('b', 2));
  assert.is.not(a, b);
});

test('two units of one key never share a transaction, and a group runs its units in key order', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const b = blocker(g);
  const order: string[] = [];
  const traced = (k: string, v: number) => {
    const u = write(k, v);
    return g.run({ ...u, run: async (tx) => (order.push(`${k}${v}`), u.run(tx)) });
  };
  const units = [traced('c', 1), traced('a', 1), traced('c', 2), traced('b', 1), traced('a', 2)];
  b.release();
  const [c1, a1, c2, b1, a2] = await Promise.all(units);
  await b.done;
  assert.ok(c1 !== c2 && a1 !== a2, 'same key: separate transactions');
  assert.is(a1, b1);
  assert.is(a1, c1);
  assert.is(a2, c2);
  assert.equal(order, ['a1', 'b1', 'c1', 'a2', 'c2'], 'first group a, b, c in key order; then the second units of a and c');
});

test('a unit `alone` is never grouped: it commits in a transaction of its own, and the others group around it', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const b = blocker(g);
  const units = [g.run(write('a', 1)), g.run(write('b', 1, { alone: true })), g.run(write('c', 1, { alone: true })), g.run(write('d', 1))];
  b.release();
  const [a, bAlone, cAlone, d] = await Promise.all(units);
  await b.done;
  assert.is(a, d, 'a and d grouped, past the units alone');
  assert.is(new Set([a, bAlone, cAlone]).size, 3, 'b and c each in a transaction of its own');
});

test('a failing unit: the group rolls back, the others commit alone, the failure is its own, started units are undone', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const b = blocker(g);
  const undone: string[] = [];
  const undo = (k: string) => async () => void undone.push(k);
  let bRuns = 0;
  const units = [
    g.run(write('a', 1, { undo: undo('a') })),
    g.run({
      key: 'b',
      async run(tx) {
        bRuns++;
        await sql(tx, 'INSERT INTO probe (k, v, txid) VALUES ($1, 1, txid_current())', ['b']);
        throw new Error('b is broken');
      },
      undo: undo('b'),
    }),
    g.run(write('c', 1, { undo: undo('c') })),
  ];
  b.release();
  const outcomes = await Promise.allSettled(units);
  await b.done;
  assert.equal(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /b is broken/);
  assert.is(bRuns, 2, 'b ran in the group, then alone');
  // Group: a and b started, then rolled back. Alone: b failed again and was undone again.
  assert.equal(undone, ['a', 'b', 'b']);
  const stored = await rows();
  assert.equal(
    stored.map((r) => r.k),
    ['a', 'c'],
    'only a and c, once each; nothing of b',
  );
  assert.is.not(stored[0]!.txid, stored[1]!.txid, 'a and c committed alone');
});

test('a transient failure goes to every unit of the group (the consumer loop retries), after undoing them', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const b = blocker(g);
  const undone: string[] = [];
  const units = [
    g.run(write('a', 1, { undo: async () => void undone.push('a') })),
    g.run({
      key: 'b',
      run: async () => {
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      },
      undo: async () => void undone.push('b'),
    }),
    g.run(write('c', 1, { undo: async () => void undone.push('c') })),
  ];
  b.release();
  const outcomes = await Promise.allSettled(units);
  await b.done;
  assert.equal(
    outcomes.map((o) => o.status),
    ['rejected', 'rejected', 'rejected'],
  );
  for (const o of outcomes) assert.is((o as PromiseRejectedResult).reason.code, '40P01');
  assert.equal(undone, ['a', 'b'], 'c never started');
  assert.is((await rows()).length, 0);
});

test('a failing COMMIT: every unit gets its error and nothing is undone (the outcome is unknown to them)', async () => {
  // A deferred constraint trigger runs at COMMIT: the body succeeds, the commit fails.
  await sql(ds, `CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
  await sql(
    ds,
    `CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON probe DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.k = 'c') EXECUTE FUNCTION fail_at_commit()`,
  );
  try {
    const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
    const b = blocker(g);
    const undone: string[] = [];
    const units = ['a', 'b', 'c'].map((k) => g.run(write(k, 1, { undo: async () => void undone.push(k) })));
    b.release();
    const outcomes = await Promise.allSettled(units);
    await b.done;
    assert.equal(
      outcomes.map((o) => o.status),
      ['rejected', 'rejected', 'rejected'],
    );
    for (const o of outcomes) assert.match(String((o as PromiseRejectedResult).reason), /refused at commit/);
    assert.equal(undone, [], 'no undo: a unit cannot know whether a failed commit took effect');
    assert.is((await rows()).length, 0);
  } finally {
    await sql(ds, 'DROP TRIGGER fail_at_commit ON probe');
    await sql(ds, 'DROP FUNCTION fail_at_commit()');
  }
});

test('every lane stuck past stallMs: waiting and new units fail at once as an outage of this database; a free lane ends it', async () => {
  const g = groupCommitter(ds, { max: 4, lanes: 1, stallMs: 300 }, quiet);
  const slow: Unit<number> = { key: 'slow', run: async (tx) => (await sql(tx, 'SELECT pg_sleep(1.2)'), 1) };
  const t0 = Date.now();
  const stuck = g.run(slow);
  const waiting = g.run(write('w1', 1)).then(
    () => 'committed',
    (err: unknown) => err,
  );
  const waitErr = await waiting;
  assert.instance(waitErr, TransientError);
  assert.equal([(waitErr as TransientError).scope, (waitErr as TransientError).kind], [ds.scope, 'outage']);
  const waited = Date.now() - t0;
  assert.ok(waited >= 280 && waited < 900, `the waiting unit failed after ${waited} ms (bound 300)`);
  const t1 = Date.now();
  const late = await g.run(write('w2', 2)).then(
    () => 'committed',
    (err: unknown) => err,
  );
  assert.instance(late, TransientError, 'a unit handed in while stuck fails at once');
  assert.ok(Date.now() - t1 < 100);
  assert.is(await stuck, 1, 'the slow transaction itself is not disturbed');
  await new Promise((r) => setImmediate(r)); // its lane is freed just after its units are answered
  assert.is(typeof (await g.run(write('w3', 3))), 'number', 'once a lane is free, units run again');
  assert.equal(
    (await sql<{ k: string }>(ds, 'SELECT k FROM probe ORDER BY k')).rows.map((r) => r.k),
    ['w3'],
  );
});

test('stallMs 0: a unit waits for a busy lane however long it takes', async () => {
  const g = groupCommitter(ds, { max: 4, lanes: 1, stallMs: 0 }, quiet);
  const stuck = g.run({ key: 'slow', run: async (tx) => (await sql(tx, 'SELECT pg_sleep(0.8)'), 1) });
  assert.is(typeof (await g.run(write('w4', 4))), 'number');
  await stuck;
});

test('max 1: one transaction per unit, as without grouping', async () => {
  const g = groupCommitter(ds, { max: 1, lanes: 1 }, quiet);
  const b = blocker(g);
  const units = Array.from({ length: 5 }, (_, i) => g.run(write(`u${i}`, i)));
  b.release();
  const txids = await Promise.all(units);
  await b.done;
  assert.is(new Set(txids).size, 5);
});

test('many concurrent groups locking the same rows in both directions never deadlock', async () => {
  const g = groupCommitter(ds, { max: 8, lanes: 3 }, quiet);
  const keys = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  await sql(ds, `INSERT INTO probe (k, v, txid) SELECT k, 0, 0 FROM unnest($1::text[]) k`, [keys]);
  const bump = (k: string): Unit<void> => ({
    key: k,
    async run(tx) {
      await sql(tx, 'UPDATE probe SET v = v + 1 WHERE k = $1', [k]);
    },
  });
  // Submitted in ascending and descending order alternately: without the key order, groups would
  // lock the same rows in opposite orders.
  const all: Promise<void>[] = [];
  for (let round = 0; round < 40; round++) for (const k of round % 2 ? [...keys].reverse() : keys) all.push(g.run(bump(k)));
  const outcomes = await Promise.allSettled(all);
  assert.equal(outcomes.filter((o) => o.status === 'rejected').length, 0);
  assert.equal(
    (await rows()).map((r) => r.v),
    keys.map(() => 40),
  );
});

/** Keys whose code-point order (PostgreSQL's `COLLATE "C"`) differs from JavaScript's `<` (UTF-16 units) and from a locale's. */
const ODD_KEYS = ['B', 'a', 'é', '\uFF01', '\u{1F600}', 'Z', 'a-1', 'a1'];

/** A batch that writes its units' rows in one statement and answers each with the transaction id; `calls` records each run's inputs. */
function probeBatch(): Batch<{ k: string; v: number }, number> & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async run(tx, members) {
      calls.push(members.map((m) => m.input.k));
      const { rows } = await sql<{ txid: string }>(tx, 'INSERT INTO probe (k, v, txid) SELECT k, v, txid_current() FROM unnest($1::text[], $2::int[]) AS x(k, v) RETURNING txid::text', [
        members.map((m) => m.input.k),
        members.map((m) => m.input.v),
      ]);
      return rows.map((r) => Number(r.txid));
    },
  };
}

const member = (b: Batch<{ k: string; v: number }, number>, k: string, v: number): Unit<number> => write(k, v, { batch: batched(b, { k, v }) });

test('a batch does a group of its units in one run, in code-point key order; other units form groups of their own', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const one = probeBatch();
  const other = probeBatch();
  const b = blocker(g);
  const units = [...ODD_KEYS.map((k, i) => g.run(member(one, k, i))), g.run(write('plain-1', 100)), g.run(member(other, 'x', 200)), g.run(write('plain-2', 101)), g.run(member(other, 'y', 201))];
  b.release();
  const txids = await Promise.all(units);
  await b.done;
  const expected = [...ODD_KEYS].sort(byKey);
  assert.equal(one.calls, [expected], 'one run with every unit of the batch, in code-point order');
  assert.equal(expected, ['B', 'Z', 'a', 'a-1', 'a1', 'é', '\uFF01', '\u{1F600}']);
  assert.equal(other.calls, [['x', 'y']]);
  const groups = [new Set(txids.slice(0, ODD_KEYS.length)), new Set([txids[8], txids[10]]), new Set([txids[9], txids[11]])];
  assert.equal(
    groups.map((x) => x.size),
    [1, 1, 1],
    'each kind in a transaction of its own',
  );
  assert.is(new Set(groups.map((x) => [...x][0])).size, 3);
  const stored = await rows();
  assert.equal(
    ODD_KEYS.map((k) => stored.find((r) => r.k === k)?.txid),
    txids.slice(0, ODD_KEYS.length),
    'each unit answered with its own row’s transaction',
  );
});

test('a batch that fails rolls its group back; each unit then runs its own work alone', async () => {
  const g = groupCommitter(ds, { max: 16, lanes: 1 }, quiet);
  const failing: Batch<{ k: string; v: number }, number> = {
    async run(tx, members) {
      await sql(tx, 'INSERT INTO probe (k, v, txid) SELECT k, 0, 0 FROM unnest($1::text[]) k', [members.map((m) => m.input.k)]);
      throw new Error('batch broke');
    },
  };
  const b = blocker(g);
  const units = ['u1', 'u2', 'u3'].map((k, i) => g.run(member(failing, k, i)));
  b.release();
  const txids = await Promise.all(units);
  await b.done;
  assert.is(new Set(txids).size, 3, 'three transactions of their own');
  assert.equal(
    (await rows()).map((r) => [r.k, r.v]),
    [
      ['u1', 0],
      ['u2', 1],
      ['u3', 2],
    ],
    'the batch’s rows rolled back; each unit’s own row stands',
  );
});

test('batches and single units locking the same rows in both directions never deadlock (odd keys included)', async () => {
  const g = groupCommitter(ds, { max: 8, lanes: 3 }, quiet);
  const keys = [...ODD_KEYS, 'k1', 'k2', 'k3', 'k4'];
  await sql(ds, `INSERT INTO probe (k, v, txid) SELECT k, 0, 0 FROM unnest($1::text[]) k`, [keys]);
  const lockAll: Batch<string, void> = {
    async run(tx, members) {
      const ks = members.map((m) => m.input);
      // Locks first (in the documented order), then writes: the batch contract for a lock-and-read statement.
      await sql(tx, 'SELECT k FROM probe WHERE k = ANY($1) ORDER BY k COLLATE "C" FOR UPDATE', [ks]);
      await sql(tx, 'UPDATE probe SET v = v + 1 WHERE k = ANY($1)', [ks]);
      return ks.map(() => undefined);
    },
  };
  const bump = (k: string, asBatch: boolean): Unit<void> => ({
    key: k,
    async run(tx) {
      await sql(tx, 'UPDATE probe SET v = v + 1 WHERE k = $1', [k]);
    },
    ...(asBatch ? { batch: batched(lockAll, k) } : {}),
  });
  const all: Promise<void>[] = [];
  for (let round = 0; round < 40; round++) for (const [i, k] of (round % 2 ? [...keys].reverse() : keys).entries()) all.push(g.run(bump(k, (i + round) % 3 !== 0)));
  const outcomes = await Promise.allSettled(all);
  assert.equal(
    outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : [])),
    [],
  );
  assert.equal(
    (await rows()).map((r) => r.v),
    keys.map(() => 40),
  );
});

test.run();
