import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import { TransientError } from './errors';
import { redisFailure, type Redis, type ReplicaAck } from './redis';

/**
 * Live stock of a limited SKU: the Redis counter `activity:stock:{sku:<sku>}` of units still to sell.
 * Unlimited SKUs have none. Every operation is one Lua script (see docs/DESIGN.md "Stock protocol").
 * Every key of a SKU carries the hash tag `{sku:<sku>}`, so each script touches one cluster slot.
 */
const tag = (sku: number) => `{sku:${sku}}`;
export const stockKey = (sku: number) => `activity:stock:${tag(sku)}`;
/** Units taken by transactions not yet settled: field `userId \0 outBusinessNo \0 orderId` → Redis time (s). */
export const reservedKey = (sku: number) => `activity:stock:${tag(sku)}:reserved`;
export const rebuildLockKey = (sku: number) => `activity:stock:${tag(sku)}:rebuild`;
/** SCAN pattern of every reservations hash (add the client's key prefix). */
export const RESERVED_PATTERN = 'activity:stock:{sku:*}:reserved';
export const SYNC_LOCK_KEY = 'activity:stock:sync';

export function skuOfReservedKey(key: string): number | undefined {
  const m = /^activity:stock:\{sku:(\d+)\}:reserved$/.exec(key);
  const sku = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(sku) ? sku : undefined;
}

/** The part of a key Redis Cluster hashes to pick its slot: the first non-empty `{…}`, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Keys of the layout before hash tags (one Redis, no cluster): left over after an upgrade, dropped at a rebuild. */
export const legacyKeys = (sku: number) => [`activity:stock:${sku}`, `activity:stock:${sku}:reserved`, `activity:stock:${sku}:rebuild`];
export const LEGACY_DIRTY_KEY = 'activity:stock:dirty';

export type Script = Readonly<{ lua: string; sha: string; keys: number }>;

/** A Lua script sent once per Redis server: EVALSHA, and EVAL only when the server lost it (NOSCRIPT). */
export function script(keys: number, lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex'), keys };
}

export async function runScript(redis: Redis, s: Script, ...keysAndArgs: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, s.keys, ...keysAndArgs);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return redis.eval(s.lua, s.keys, ...keysAndArgs);
  }
}

/** A write that stock correctness depends on was not confirmed by enough replicas in time: an outage of Redis, retry later. */
export class ReplicaLagError extends TransientError {
  constructor(what: string, ack: ReplicaAck, got: number) {
    super('redis', 'outage', `redis replication: ${what} not confirmed by ${ack.replicas} replica(s) within ${ack.timeoutMs} ms (got ${got})`);
    this.name = 'ReplicaLagError';
  }
}

/**
 * Runs a script, then `WAIT` on the same connection (one pipeline, so on the node that ran it):
 * the number of replicas that hold every write of that connection up to and including the script.
 */
export async function runScriptAcked(redis: Redis, ack: ReplicaAck, s: Script, ...keysAndArgs: Array<string | number>): Promise<{ value: unknown; acked: number }> {
  for (const withSha of [true, false]) {
    const p = redis.pipeline();
    if (withSha) p.evalsha(s.sha, s.keys, ...keysAndArgs);
    else p.eval(s.lua, s.keys, ...keysAndArgs);
    const results = (await p.wait(ack.replicas, ack.timeoutMs).exec()) ?? [];
    const [[err, value] = [], [waitErr, acked] = []] = results;
    if (err && withSha && String(err.message).startsWith('NOSCRIPT')) continue;
    if (err) {
      // A redirection inside a pipeline is not followed: learn the new layout, the handler retries.
      if (redis instanceof Cluster && /^(MOVED|ASK) /.test(err.message)) redis.refreshSlotsCache();
      throw redisFailure(err);
    }
    if (waitErr) throw redisFailure(waitErr);
    return { value, acked: Number(acked) };
  }
  throw new Error('unreachable: EVAL does not answer NOSCRIPT');
}
