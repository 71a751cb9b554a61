/**
 * Text helpers for set-based statements over a group's rows that live in several split tables
 * (`_000` … of one shard database): the suffixes come from the router only, never from input.
 *
 * A statement names every split table of its database (`Shard.suffixes`), whichever its group's
 * rows are in: one text per statement, not one per set of tables, so that a connection plans it
 * once. A text per set meant up to 2^T − 1 texts, each planned anew on each connection, and a plan
 * of these statements costs 1–15 ms (docs/BENCHMARKS.md, hot path step 24). A table without rows
 * in the group costs its CTE a scan of the group's few input rows.
 */

/** One expression per split table, chosen by the row's `column` (a lone table needs no CASE). */
export const bySuffix = (column: string, suffixes: readonly string[], expr: (t: string) => string): string =>
  suffixes.length === 1 ? expr(suffixes[0]!) : `CASE ${column} ${suffixes.map((t) => `WHEN '${t}' THEN ${expr(t)}`).join(' ')} END`;

/** One CTE per split table, `${name}000 AS (…), ${name}001 AS (…)`: a statement writes each table in a CTE of its own. */
export const ctePerSuffix = (name: string, suffixes: readonly string[], body: (t: string) => string): string => suffixes.map((t) => `${name}${t} AS (${body(t)})`).join(', ');

/** The rows those CTEs returned, as one: `SELECT cols FROM ${name}000 UNION ALL …`. */
export const unionPerSuffix = (name: string, suffixes: readonly string[], columns = '*'): string => suffixes.map((t) => `SELECT ${columns} FROM ${name}${t}`).join(' UNION ALL ');

/** Rows of values turned into one array per column, the parameters of `unnest($1::…[], $2::…[], …)`. */
export const columnsOf = (rows: readonly (readonly unknown[])[], width: number): unknown[][] => Array.from({ length: width }, (_, k) => rows.map((r) => r[k]));
