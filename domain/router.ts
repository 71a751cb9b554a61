/** Java `String.hashCode`: 32-bit, over UTF-16 code units (what the reference router hashes). */
export function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

export type Route = Readonly<{ index: number; shard: number; suffix: string }>;

/**
 * The reference router: `idx = (S*T - 1) & (h ^ (h >>> 16))`; shard 1..S, split-table suffix `NNN`.
 * S*T must be a power of two, or the mask would leave some tables empty.
 */
export function route(userId: string, shards: number, tables: number): Route {
  const h = javaHash(userId);
  const index = (shards * tables - 1) & (h ^ (h >>> 16));
  return { index, shard: Math.floor(index / tables) + 1, suffix: splitSuffix(index % tables) };
}

export const splitSuffix = (table: number): string => String(table).padStart(3, '0');

export const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
