import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isTransient } from '../errors';

/** Shared pieces of the operator commands: option parsing, usage errors, masked URLs, lists. */

/** A wrong command line: printed with the reason and the usage, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** A failure explained in one line (no stack), exit 1. */
export class CliError extends Error {
  override name = 'CliError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode; `--help`/`-h` is always known; any mistake is a UsageError. */
export function parseCommand<O extends Options>(argv: readonly string[], options: O, usage: string) {
  try {
    return parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), usage);
  }
}

/** A whole number in [min, max] from an option, or a UsageError naming it. */
export function wholeNumber(value: string | undefined, name: string, usage: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`, usage);
  return n;
}

/** The URL with its password replaced by `***`, for messages. */
import { maskUrl as masked } from '../config';

export { masked };

/** Refused logins and missing databases (SQLSTATE), besides what isTransient knows: the service is not usable as configured. */
const UNREACHABLE_CODES = new Set(['28P01', '28000', '3D000', 'ACCESS-REFUSED', 'NOAUTH', 'WRONGPASS']);
const unreachable = (err: unknown): boolean => {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return isTransient(err) || UNREACHABLE_CODES.has(String(e?.code ?? '').toUpperCase()) || /ACCESS_REFUSED|authentication failed|NOAUTH|WRONGPASS|does not exist/i.test(String(e?.message ?? ''));
};

/** Runs `open`; a connection failure becomes one line naming the service and its masked URL(s). */
export async function reach<T>(service: string, urls: readonly string[], open: () => T | Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (!unreachable(err)) throw err;
    throw new CliError(`cannot reach ${service} at ${urls.map(masked).join(', ')}: ${(err as Error).message || String(err)}`);
  }
}

export const write = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** Rows as JSON (`--json`) or an aligned table, with a count line. */
export function printRows(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[], json: boolean, noun: string): void {
  if (json) return void write(JSON.stringify(rows));
  const cell = (v: unknown) => (v instanceof Date ? v.toISOString() : v === null || v === undefined ? '' : String(v)).replace(/\s+/g, ' ');
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  write(`${[line(columns), ...cells.map(line)].join('\n')}\n(${rows.length} ${noun})`);
}
