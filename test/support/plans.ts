import type pg from 'pg';

/**
 * The generic plan `client` makes for `text` (prepared as `name`, parameter types inferred), as
 * EXPLAIN prints it: what a worker's connection keeps for the statement (infra/db.ts).
 */
export async function genericPlan(client: pg.Client, name: string, text: string): Promise<string> {
  const params = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  await client.query(`PREPARE ${name} AS ${text}`);
  const { rows } = await client.query(`EXPLAIN EXECUTE ${name}${params ? `(${Array(params).fill('NULL').join(', ')})` : ''}`);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

/**
 * The index scans of an EXPLAIN text that have no index condition: each reads its whole index (a
 * partial one: every row of its predicate), as a lookup by key must not. One line per such scan.
 */
export function unboundedIndexScans(plan: string): string[] {
  const lines = plan.split('\n').map((l) => l.trim().replace(/^->\s*/, ''));
  return lines.filter((l, i) => /^(Index Scan|Index Only Scan|Bitmap Index Scan)\b/.test(l) && !/^(Index Cond|Order By):/.test(lines[i + 1] ?? ''));
}
