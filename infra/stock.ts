import { createHash, randomUUID } from 'node:crypto';
import { begin, sql, type Db, type OpenTransaction, type Tx } from './db';
import type { Logger } from './log';
import { keyPrefixOf, mastersOf, type Redis } from './redis';
import type { Databases } from './shards';
import {
  legacyKeys,
  LEGACY_DIRTY_KEY,
  rebuildLockKey,
  RESERVED_PATTERN,
  ReplicaLagError,
  reservedKey,
  runScript,
  runScriptAcked,
  script,
  skuOfReservedKey,
  stockKey,
  SYNC_LOCK_KEY,
} from './stock-keys';
import { mutated } from './mutation';

export { hashTag, legacyKeys, rebuildLockKey, RESERVED_PATTERN, ReplicaLagError, reservedKey, skuOfReservedKey, stockKey } from './stock-keys';

/** A unit taken for one order attempt; released after commit, returned after rollback, else reaped. */
export type Reservation = Readonly<{ sku: number; field: string }>;

export type Take =
  | { kind: 'taken'; remaining: number; reservation: Reservation }
  | { kind: 'sold-out' }
  /** None left, but units are still reserved by transactions not settled: it is not sold out until they are. */
  | { kind: 'pending' }
  | { kind: 'missing' };

// Idempotent per reservation: a command re-sent after a lost reply must not take a second unit. Such a
// re-send rewrites its entry, so that a WAIT after it also covers the first take (replication is in order).
// Sold out (-1) only when no unit is reserved: a reserved unit may come back (rollback, reaper), -3 = wait.
const TAKE = script(
  2,
  `
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
local at = redis.call('HGET', KEYS[2], ARGV[1])
if at then
  redis.call('HSET', KEYS[2], ARGV[1], at)
  return tonumber(v)
end
${mutated('no-sold-out-check') ? '' : "if tonumber(v) <= 0 then return (redis.call('HLEN', KEYS[2]) > 0) and -3 or -1 end"}
redis.call('HSET', KEYS[2], ARGV[1], redis.call('TIME')[1])
return redis.call('DECR', KEYS[1])`,
);

// The reservation decides: a unit comes back only once, and never into a counter rebuilt without it.
const GIVE_BACK = script(
  2,
  `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
  return 1
end
return 0`,
);

export const reservationField = (userId: string, outBusinessNo: string, orderId: string) => `${userId}\0${outBusinessNo}\0${orderId}`;

/**
 * Takes one unit. With `redis.replicaAck` (cluster mode) the unit counts only once that many
 * replicas hold it; else it is given back and `ReplicaLagError` (transient) thrown, so no order can
 * commit on a take that a failover could lose (docs/DESIGN.md "Failover").
 */
export async function takeStock(redis: Redis, sku: number, userId: string, outBusinessNo: string, orderId: string): Promise<Take> {
  const field = reservationField(userId, outBusinessNo, orderId);
  const keys = [stockKey(sku), reservedKey(sku), field] as const;
  const ack = redis.replicaAck;
  let v: number;
  if (ack) {
    const r = await runScriptAcked(redis, ack, TAKE, ...keys);
    v = Number(r.value);
    if (v >= 0 && r.acked < ack.replicas) {
      await giveBackStock(redis, { sku, field });
      throw new ReplicaLagError(`stock take of sku ${sku}`, ack, r.acked);
    }
  } else {
    v = Number(await runScript(redis, TAKE, ...keys));
  }
  if (v === -2) return { kind: 'missing' };
  if (v === -1) return { kind: 'sold-out' };
  if (v === -3) return { kind: 'pending' };
  return { kind: 'taken', remaining: v, reservation: { sku, field } };
}

/** After commit: the unit is an order now. */
export async function releaseStock(redis: Redis, r: Reservation): Promise<void> {
  await redis.hdel(reservedKey(r.sku), r.field);
}

/** After rollback (or when reaped without an order): true if the unit went back to the counter. */
export async function giveBackStock(redis: Redis, r: Reservation): Promise<boolean> {
  return Number(await runScript(redis, GIVE_BACK, stockKey(r.sku), reservedKey(r.sku), r.field)) === 1;
}

/** Adds `delta` (may be negative, floored at 0) to a live counter; a missing counter stays missing. */
const ADJUST = script(
  1,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = tonumber(redis.call('GET', KEYS[1])) + tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v)
return v`,
);

/**
 * Moves a live counter by `delta`; undefined if there is none (the caller rebuilds it from the
 * ledger). A change no replica confirmed is dropped too: the rebuild then reads the new stock.
 */
export async function adjustStock(redis: Redis, sku: number, delta: number): Promise<number | undefined> {
  const ack = redis.replicaAck;
  if (!ack) {
    const v = Number(await runScript(redis, ADJUST, stockKey(sku), delta));
    return v < 0 ? undefined : v;
  }
  const r = await runScriptAcked(redis, ack, ADJUST, stockKey(sku), delta);
  if (Number(r.value) >= 0 && r.acked < ack.replicas) await redis.del(stockKey(sku));
  return Number(r.value) < 0 || r.acked < ack.replicas ? undefined : Number(r.value);
}

/** 64-bit advisory lock key for a text (pg takes a signed bigint). */
export function lockKey(text: string): string {
  return BigInt.asIntN(64, BigInt(`0x${createHash('sha256').update(text).digest('hex').slice(0, 16)}`)).toString();
}

/** Every recharge transaction of a limited SKU holds the shared side while it takes stock; a rebuild the exclusive side. */
export const skuLockKey = (sku: number) => lockKey(`stock-sku:${sku}`);

/** Committed recharge orders of a SKU in one shard's split tables: the ledger, counted per shard by the rebuild. */
async function countShardOrders(tx: Tx | Db, suffixes: readonly string[], sku: number): Promise<number> {
  const union = suffixes.map((s) => `SELECT count(*) AS n FROM raffle_activity_order_${s} WHERE sku = $1`).join(' UNION ALL ');
  const { rows } = await sql<{ n: string }>(tx, `SELECT coalesce(sum(n), 0)::bigint AS n FROM (${union}) t`, [sku]);
  return Number(rows[0]?.n ?? 0);
}

// Set only if still missing; reservations left in the hash belong to transactions that have ended.
const REBUILD = script(
  2,
  `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`,
);

const UNLOCK = script(1, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);

export type StockState = 'ready' | 'unlimited' | 'unknown';

/**
 * Makes sure a limited SKU has a counter. If it is missing, one worker (Redis lock) rebuilds it as
 * `stock_count − committed orders`, counted while holding the exclusive SKU lock on every shard, so
 * no recharge of that SKU is in flight; the others wait for it.
 */
export async function ensureStock(dbs: Databases, redis: Redis, sku: number, log?: Logger, waitMs = 20_000): Promise<StockState> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const stock = await stockCountOf(dbs, sku);
    if (stock === undefined) return 'unknown';
    if (stock < 0) return 'unlimited';
    if (await redis.exists(stockKey(sku))) return 'ready';
    const token = randomUUID();
    if (await redis.set(rebuildLockKey(sku), token, 'PX', 35_000, 'NX')) {
      try {
        const value = await rebuildLocked(dbs, redis, sku);
        log?.warn({ sku, value }, 'stock counter rebuilt from the ledger');
        return value === undefined ? 'unlimited' : 'ready';
      } finally {
        await runScript(redis, UNLOCK, rebuildLockKey(sku), token).catch(() => undefined);
      }
    }
    if (Date.now() > deadline) throw new Error(`stock counter of sku ${sku} still missing after ${waitMs} ms`);
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 50));
  }
}

async function stockCountOf(dbs: Databases, sku: number): Promise<number | undefined> {
  const { rows } = await sql<{ stock_count: number }>(dbs.global, 'SELECT stock_count FROM raffle_activity_sku WHERE sku = $1', [sku]);
  return rows[0] ? Number(rows[0].stock_count) : undefined;
}

/** Under the rebuild lock: exclusive SKU lock on every shard in shard order, count, SET NX, commit all. */
async function rebuildLocked(dbs: Databases, redis: Redis, sku: number): Promise<number | undefined> {
  const open: OpenTransaction[] = [];
  try {
    let sold = 0;
    for (const { ds } of dbs.shards) {
      const tx = await begin(ds);
      open.push(tx);
      if (!mutated('no-rebuild-lock')) await sql(tx, 'SELECT pg_advisory_xact_lock($1::bigint)', [skuLockKey(sku)]);
      sold += await countShardOrders(tx, dbs.suffixes, sku);
    }
    const stock = await stockCountOf(dbs, sku); // read after the locks: the live stock_count, never the lagging surplus
    let value: number | undefined;
    if (stock !== undefined && stock >= 0) {
      value = Math.max(0, stock - sold);
      await runScript(redis, REBUILD, stockKey(sku), reservedKey(sku), value);
      // The old layout's keys of this SKU are dead now (a deployment upgraded in place): drop them.
      await Promise.all([...legacyKeys(sku).map((k) => redis.del(k)), redis.srem(LEGACY_DIRTY_KEY, String(sku))]).catch(() => undefined); // tidying only
    }
    for (const tx of open) await tx.commit(); // the rest is rolled back below if one fails
    return value;
  } finally {
    for (const tx of open) await tx.rollback();
  }
}

/** Catalog load: a new or re-limited SKU gets a counter from the ledger (locked rebuild); unlimited has none. */
export async function warmStock(dbs: Databases, redis: Redis, sku: number, stockCount: number): Promise<void> {
  if (stockCount < 0) {
    await redis.del(stockKey(sku));
    return;
  }
  await ensureStock(dbs, redis, sku);
}

export type Orphan = Readonly<{ sku: number; field: string; userId: string; outBusinessNo: string; orderId: string; ageSeconds: number }>;

/** Reservations at least `minAgeSeconds` old, by the Redis time of the server that holds them; every cluster master is scanned. */
export async function oldReservations(redis: Redis, minAgeSeconds: number): Promise<Orphan[]> {
  const prefix = keyPrefixOf(redis);
  const out: Orphan[] = [];
  for (const node of mastersOf(redis)) {
    const now = Number((await node.time())[0]);
    let cursor = '0';
    do {
      // SCAN patterns and the keys SCAN returns carry the prefix; key arguments get it from the client.
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}${RESERVED_PATTERN}`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const sku = skuOfReservedKey(key.slice(prefix.length));
        if (sku === undefined) continue;
        for (const [field, at] of Object.entries(await redis.hgetall(reservedKey(sku)))) {
          const [userId, outBusinessNo, orderId] = field.split('\0');
          const age = now - Number(at);
          if (userId && outBusinessNo && orderId && age >= minAgeSeconds) out.push({ sku, field, userId, outBusinessNo, orderId, ageSeconds: age });
        }
      }
    } while (cursor !== '0');
  }
  return out;
}

/**
 * Writes `stock_count_surplus` = live counter for every limited SKU whose surplus differs (absolute
 * values, so repeating it is harmless). There is no dirty set: the catalog lists the limited SKUs
 * (few), the database holds the last value written, and a counter lost or restored by a failover is
 * caught up with like any other. One worker at a time (Redis lock), so writes never go back in time.
 */
export async function syncStock(dbs: Databases, redis: Redis, batch = 1_000): Promise<number> {
  const token = randomUUID();
  if (!(await redis.set(SYNC_LOCK_KEY, token, 'PX', 10_000, 'NX'))) return 0;
  try {
    const { rows } = await sql<{ sku: string; stock_count: number; stock_count_surplus: number }>(
      dbs.global,
      'SELECT sku, stock_count, stock_count_surplus FROM raffle_activity_sku WHERE stock_count >= 0 ORDER BY sku',
    );
    let written = 0;
    for (let i = 0; i < rows.length; i += batch) {
      const chunk = rows.slice(i, i + batch);
      const live = await Promise.all(chunk.map((r) => redis.get(stockKey(Number(r.sku)))));
      const skus: string[] = [];
      const values: number[] = [];
      chunk.forEach((r, j) => {
        const v = live[j];
        if (v == null) return; // missing: the next take rebuilds it
        const n = Math.min(Math.max(Number(v), 0), Number(r.stock_count));
        if (n !== Number(r.stock_count_surplus)) skus.push(r.sku), values.push(n);
      });
      if (!skus.length) continue;
      const { count } = await sql(
        dbs.global,
        `
        UPDATE raffle_activity_sku s SET stock_count_surplus = least(greatest(v.n, 0), s.stock_count), update_time = now()
        FROM unnest($1::bigint[], $2::int[]) AS v(sku, n)
        WHERE s.sku = v.sku AND s.stock_count >= 0 AND s.stock_count_surplus <> least(greatest(v.n, 0), s.stock_count)`,
        [skus, values],
      );
      written += count;
    }
    return written;
  } finally {
    await runScript(redis, UNLOCK, SYNC_LOCK_KEY, token).catch(() => undefined);
  }
}
