import { createHash, randomUUID } from 'node:crypto';
import { begin, sql, type Db, type OpenTransaction, type Tx } from './db';
import type { Logger } from './log';
import type { Redis } from './redis';
import type { Databases } from './shards';

/**
 * Live stock of a limited SKU: the Redis counter `activity:stock:{sku}` of units still to sell.
 * Unlimited SKUs have none. Every operation is one Lua script (see docs/DESIGN.md "Stock protocol").
 */
export const stockKey = (sku: number) => `activity:stock:${sku}`;
/** Units taken by transactions not yet settled: field `userId \0 outBusinessNo \0 orderId` → Redis time (s). */
export const reservedKey = (sku: number) => `activity:stock:${sku}:reserved`;
const rebuildLockKey = (sku: number) => `activity:stock:${sku}:rebuild`;
/** SKUs whose counter moved since the database surplus was last written. */
export const DIRTY_KEY = 'activity:stock:dirty';
const SYNC_LOCK_KEY = 'activity:stock:sync';

type Script = Readonly<{ lua: string; sha: string; keys: number }>;

/** A Lua script sent once per Redis server: EVALSHA, and EVAL only when the server lost it (NOSCRIPT). */
function script(keys: number, lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex'), keys };
}

async function runScript(redis: Redis, s: Script, ...keysAndArgs: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, s.keys, ...keysAndArgs);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return redis.eval(s.lua, s.keys, ...keysAndArgs);
  }
}

/** A unit taken for one order attempt; released after commit, returned after rollback, else reaped. */
export type Reservation = Readonly<{ sku: number; field: string }>;

export type Take =
  | { kind: 'taken'; remaining: number; reservation: Reservation }
  | { kind: 'sold-out' }
  | { kind: 'missing' };

// Idempotent per reservation: a command re-sent after a lost reply must not take a second unit.
const TAKE = script(3, `
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return tonumber(v) end
if tonumber(v) <= 0 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], redis.call('TIME')[1])
redis.call('SADD', KEYS[3], ARGV[2])
return redis.call('DECR', KEYS[1])`);

// The reservation decides: a unit comes back only once, and never into a counter rebuilt without it.
const GIVE_BACK = script(3, `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
  redis.call('SADD', KEYS[3], ARGV[2])
  return 1
end
return 0`);

export const reservationField = (userId: string, outBusinessNo: string, orderId: string) => `${userId}\0${outBusinessNo}\0${orderId}`;

export async function takeStock(redis: Redis, sku: number, userId: string, outBusinessNo: string, orderId: string): Promise<Take> {
  const field = reservationField(userId, outBusinessNo, orderId);
  const v = Number(await runScript(redis, TAKE, stockKey(sku), reservedKey(sku), DIRTY_KEY, field, sku));
  if (v === -2) return { kind: 'missing' };
  if (v === -1) return { kind: 'sold-out' };
  return { kind: 'taken', remaining: v, reservation: { sku, field } };
}

/** After commit: the unit is an order now. */
export async function releaseStock(redis: Redis, r: Reservation): Promise<void> {
  await redis.hdel(reservedKey(r.sku), r.field);
}

/** After rollback (or when reaped without an order): true if the unit went back to the counter. */
export async function giveBackStock(redis: Redis, r: Reservation): Promise<boolean> {
  return Number(await runScript(redis, GIVE_BACK, stockKey(r.sku), reservedKey(r.sku), DIRTY_KEY, r.field, r.sku)) === 1;
}

/** Adds `delta` (may be negative, floored at 0) to a live counter; a missing counter stays missing. */
const ADJUST = script(2, `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = tonumber(redis.call('GET', KEYS[1])) + tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v)
redis.call('SADD', KEYS[2], ARGV[2])
return v`);

export async function adjustStock(redis: Redis, sku: number, delta: number): Promise<number | undefined> {
  const v = Number(await runScript(redis, ADJUST, stockKey(sku), DIRTY_KEY, delta, sku));
  return v < 0 ? undefined : v;
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
const REBUILD = script(3, `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('DEL', KEYS[2])
  redis.call('SADD', KEYS[3], ARGV[2])
  return 1
end
return 0`);

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
      await sql(tx, 'SELECT pg_advisory_xact_lock($1::bigint)', [skuLockKey(sku)]);
      sold += await countShardOrders(tx, dbs.suffixes, sku);
    }
    const stock = await stockCountOf(dbs, sku); // read after the locks: the live stock_count, never the lagging surplus
    let value: number | undefined;
    if (stock !== undefined && stock >= 0) {
      value = Math.max(0, stock - sold);
      await runScript(redis, REBUILD, stockKey(sku), reservedKey(sku), DIRTY_KEY, value, sku);
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

/** Reservations at least `minAgeSeconds` old, by Redis time. */
export async function oldReservations(redis: Redis, minAgeSeconds: number): Promise<Orphan[]> {
  const now = Number((await redis.time())[0]);
  const out: Orphan[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'activity:stock:*:reserved', 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const sku = Number(key.split(':')[2]);
      if (!Number.isSafeInteger(sku)) continue;
      const entries = await redis.hgetall(key);
      for (const [field, at] of Object.entries(entries)) {
        const [userId, outBusinessNo, orderId] = field.split('\0');
        const age = now - Number(at);
        if (userId && outBusinessNo && orderId && age >= minAgeSeconds) out.push({ sku, field, userId, outBusinessNo, orderId, ageSeconds: age });
      }
    }
  } while (cursor !== '0');
  return out;
}

/** Live counters of dirty SKUs, as one atomic snapshot. */
const SNAPSHOT = script(1, `
local out = {}
for _, sku in ipairs(redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[1]))) do
  local v = redis.call('GET', 'activity:stock:' .. sku)
  if v then table.insert(out, sku); table.insert(out, v) else redis.call('SREM', KEYS[1], sku) end
end
return out`);

// Clean only if the counter has not moved since the snapshot: a later take keeps the SKU dirty.
const SETTLE = script(1, `
for i = 1, #ARGV, 2 do
  if redis.call('GET', 'activity:stock:' .. ARGV[i]) == ARGV[i + 1] then redis.call('SREM', KEYS[1], ARGV[i]) end
end
return 0`);

/**
 * Writes `stock_count_surplus` = live counter for every dirty SKU in one UPDATE (absolute values,
 * so repeating it is harmless). One worker at a time (Redis lock), so writes never go back in time.
 */
export async function syncStock(dbs: Databases, redis: Redis, batch = 1_000): Promise<number> {
  const token = randomUUID();
  if (!(await redis.set(SYNC_LOCK_KEY, token, 'PX', 10_000, 'NX'))) return 0;
  try {
    const flat = (await runScript(redis, SNAPSHOT, DIRTY_KEY, batch)) as string[];
    if (!flat.length) return 0;
    const skus: string[] = [];
    const values: number[] = [];
    for (let i = 0; i < flat.length; i += 2) skus.push(flat[i]!), values.push(Number(flat[i + 1]));
    await sql(dbs.global, `
      UPDATE raffle_activity_sku s SET stock_count_surplus = least(greatest(v.n, 0), s.stock_count), update_time = now()
      FROM unnest($1::bigint[], $2::int[]) AS v(sku, n)
      WHERE s.sku = v.sku AND s.stock_count >= 0 AND s.stock_count_surplus <> least(greatest(v.n, 0), s.stock_count)`,
      [skus, values]);
    await runScript(redis, SETTLE, DIRTY_KEY, ...flat);
    return skus.length;
  } finally {
    await runScript(redis, UNLOCK, SYNC_LOCK_KEY, token).catch(() => undefined);
  }
}

// A SKU at zero needs no more surplus writes; one whose counter came back above zero stays pending.
const DROP_PENDING = script(2, `
local v = redis.call('GET', KEYS[1])
if not v or tonumber(v) <= 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0`);

/** Stock-zero: drops the pending surplus update of a SKU that is at zero. */
export async function dropPendingSync(redis: Redis, sku: number): Promise<void> {
  await runScript(redis, DROP_PENDING, stockKey(sku), DIRTY_KEY, sku);
}
