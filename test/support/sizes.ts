import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Function and file sizes (docs/DESIGN.md: functions ≤ ~60 lines, files ≤ ~300). A function's size
 * is its whole span, first to last line, nested functions included (as ESLint's
 * max-lines-per-function counts); a file's is its line count. The TypeScript parser finds the
 * functions: declarations, expressions, arrows, methods, accessors and constructors.
 *
 * `npx tsx test/support/sizes.ts [--function N] [--file N] [DIR ...]` (default 60, 300, and
 * workers domain infra) lists what is over; exit 1 when anything is.
 */

export type Sized = Readonly<{ file: string; name: string; line: number; lines: number }>;

/** Every function of one source text with its size in lines, in source order. */
export function measureFunctions(file: string, text: string): Sized[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Sized[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = lineOf(node.getStart(source));
      out.push({ file, name: nameOf(node), line: first, lines: lineOf(node.getEnd()) - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The name a reader would grep: the function's own, or the variable, property or call it is given to. */
function nameOf(node: ts.Node): string {
  const own = (node as { name?: ts.Node }).name;
  if (own && (ts.isIdentifier(own) || ts.isStringLiteral(own) || ts.isPrivateIdentifier(own))) return own.text;
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isCallExpression(parent)) return `(callback of ${parent.expression.getText().slice(0, 40)})`;
  return '(anonymous)';
}

export const lineCount = (text: string): number => (text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length);

/** The `.ts` files below `dirs`, sorted. */
export function sourceFiles(root: string, dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const d of dirs) if (fs.existsSync(path.join(root, d))) walk(d);
  return out.sort();
}

export type SizeReport = Readonly<{ functions: Sized[]; files: Array<Readonly<{ file: string; lines: number }>>; checked: number }>;

/** What is over the limits among `files` (path → text). */
export function overLimits(files: ReadonlyMap<string, string>, maxFunction: number, maxFile: number): SizeReport {
  const functions: Sized[] = [];
  const big: Array<{ file: string; lines: number }> = [];
  for (const [file, text] of files) {
    functions.push(...measureFunctions(file, text).filter((f) => f.lines > maxFunction));
    if (lineCount(text) > maxFile) big.push({ file, lines: lineCount(text) });
  }
  return { functions: functions.sort((a, b) => b.lines - a.lines), files: big.sort((a, b) => b.lines - a.lines), checked: files.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = (await import('node:util')).parseArgs({ options: { function: { type: 'string' }, file: { type: 'string' } }, allowPositionals: true });
  const root = path.resolve(import.meta.dirname, '../..');
  const dirs = positionals.length ? positionals : ['workers', 'domain', 'infra'];
  const files = new Map(sourceFiles(root, dirs).map((f) => [f, fs.readFileSync(path.join(root, f), 'utf8')] as const));
  const r = overLimits(files, Number(values.function ?? 60), Number(values.file ?? 300));
  for (const f of r.functions) process.stdout.write(`function ${f.file}:${f.line} ${f.name} ${f.lines} lines\n`);
  for (const f of r.files) process.stdout.write(`file ${f.file} ${f.lines} lines\n`);
  process.stdout.write(`${r.functions.length} function(s) and ${r.files.length} file(s) over the limits in ${r.checked} files of ${dirs.join(', ')}\n`);
  process.exitCode = r.functions.length || r.files.length ? 1 : 0;
}
