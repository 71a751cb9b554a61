import { z } from 'zod';

/** The most characters an id may have (`varchar(128)` counts Unicode code points). */
export const ID_MAX = 128;

/**
 * Cc (U+0000–U+001F, U+007F–U+009F) and lone surrogates. With the `u` flag a paired surrogate is one
 * code point above U+FFFF, so only an unpaired half falls in D800–DFFF. The same pattern is in the
 * JSON Schema, where validators (ajv, Python's re) also match code points.
 */
const PRINTABLE = /^[^\u0000-\u001F\u007F-\u009F\uD800-\uDFFF]*$/u;

export const codePoints = (s: string): number => [...s].length;

/**
 * `userId`, `outBusinessNo`, `behavior` (contract §5.1, §6): 1–128 code points, stored verbatim,
 * whatever printable Unicode they hold (quotes, `;`, SQL text, CJK, emoji). Messages name no field:
 * `reasonOf` puts the path in front (`userId is over 128 characters`).
 */
export const identifier = (what: string) =>
  z
    .string({ error: 'must be a non-empty string' })
    .check(
      z.refine((s: string) => s.length > 0, { message: 'must be a non-empty string', abort: true }),
      z.refine((s: string) => codePoints(s) <= ID_MAX, { message: `is over ${ID_MAX} characters`, abort: true }),
    )
    .regex(PRINTABLE, 'holds a control character or a lone surrogate')
    .meta({ minLength: 1, maxLength: ID_MAX, description: `${what}: 1–${ID_MAX} Unicode code points, any printable text (no control character, no lone surrogate); stored and answered verbatim` });

/** A positive whole JSON number; a numeric string is refused (the contract types ids as numbers). */
export const wholeId = (what: string) => z.int({ error: 'must be a positive whole number' }).positive({ error: 'must be a positive whole number' }).meta({ description: what });

/** A non-empty string of at most `max` UTF-16 units (ids this service makes: order ids, message ids). */
export const text = (max: number, what: string) =>
  z
    .string({ error: 'must be a non-empty string' })
    .min(1, { error: 'must be a non-empty string' })
    .max(max, { error: `is over ${max} characters` })
    .meta({ description: what });

export const count = (what: string) => z.int().nonnegative().meta({ description: what });

/** An instant as this service writes it: `Date.prototype.toISOString()`, UTC. */
export const isoTime = (what: string) => z.iso.datetime({ offset: false }).meta({ description: `${what} (ISO 8601, UTC)` });

export const epochMs = (what: string) =>
  z
    .int({ error: 'must be a whole number of milliseconds since 1970' })
    .nonnegative({ error: 'must be a whole number of milliseconds since 1970' })
    .meta({ description: `${what} (epoch milliseconds)` });

/** One line naming the field: `userId is over 128 characters`, `taskIds[2] must be …`. */
export function reasonOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid message';
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${String(p)}` : String(p))).join('');
  return path ? `${path} ${issue.message}` : issue.message;
}
