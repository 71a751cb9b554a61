/**
 * Text helpers for set-based statements over a group's rows that live in several split tables
 * (`_000` … of one shard database): the suffixes come from the router only, never from input.
 */

/** The split tables a group's rows live in, once each and sorted: one statement text per set. */
export const suffixesOf = (xs: readonly Readonly<{ suffix: string }>[]): string[] => [...new Set(xs.map((x) => x.suffix))].sort();

/** One expression per split table, chosen by the row's `column` (a lone table needs no CASE). */
export const bySuffix = (column: string, suffixes: readonly string[], expr: (t: string) => string): string =>
  suffixes.length === 1 ? expr(suffixes[0]!) : `CASE ${column} ${suffixes.map((t) => `WHEN '${t}' THEN ${expr(t)}`).join(' ')} END`;

/** One CTE per split table, `${name}000 AS (…), ${name}001 AS (…)`: a statement writes each table in a CTE of its own. */
export const ctePerSuffix = (name: string, suffixes: readonly string[], body: (t: string) => string): string => suffixes.map((t) => `${name}${t} AS (${body(t)})`).join(', ');

/** The rows those CTEs returned, as one: `SELECT cols FROM ${name}000 UNION ALL …`. */
export const unionPerSuffix = (name: string, suffixes: readonly string[], columns = '*'): string => suffixes.map((t) => `SELECT ${columns} FROM ${name}${t}`).join(' UNION ALL ');

/** Rows of values turned into one array per column, the parameters of `unnest($1::…[], $2::…[], …)`. */
export const columnsOf = (rows: readonly (readonly unknown[])[], width: number): unknown[][] => Array.from({ length: width }, (_, k) => rows.map((r) => r[k]));
