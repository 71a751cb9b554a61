/**
 * The caller's identifiers (`userId`, `outBusinessNo`, `behavior`): stored and answered verbatim,
 * whatever printable Unicode they hold (contract §6 Ids). Refused only when empty, over 128
 * characters (code points, as PostgreSQL's varchar counts them), or holding a control character
 * (Unicode Cc: U+0000–U+001F, U+007F–U+009F) or a lone surrogate (not storable as UTF-8).
 */
export const MAX_ID_CHARS = 128;

const CONTROL = /\p{Cc}/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** Characters as PostgreSQL counts them: code points, so an emoji is one, not two UTF-16 units. */
export function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** What is wrong with `v` as an identifier (a phrase to follow its name), or undefined when it is fine. */
export function idProblem(v: unknown, max = MAX_ID_CHARS): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length === 0) return 'must not be empty';
  if (v.length > max * 2 || codePoints(v) > max) return `is over ${max} characters`;
  const control = CONTROL.exec(v);
  if (control) return `holds a control character (U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
  if (LONE_SURROGATE.test(v)) return 'holds a lone surrogate (not valid Unicode)';
  return undefined;
}
