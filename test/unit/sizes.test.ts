import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lineCount, measureFunctions, overLimits } from '../../test/support/sizes';

const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');

test('a function is measured from its first to its last line, nested ones inside it included', () => {
  const text = `export function outer(): number {\n  let x = 0;\n  const inner = () => {\n${body(3)}\n  };\n  inner();\n  return x;\n}\n`;
  const sizes = measureFunctions('a.ts', text);
  assert.equal(
    sizes.map((f) => [f.name, f.line, f.lines]),
    [
      ['outer', 1, 10],
      ['inner', 3, 5],
    ],
  );
});

test('methods, arrows given to calls and class members are named for a grep', () => {
  const text = `class A {\n  run() {\n    return 1;\n  }\n  constructor() {}\n}\nconst o = { go: async () => 2 };\nsetTimeout(() => 3);\n`;
  assert.equal(
    measureFunctions('b.ts', text).map((f) => f.name),
    ['run', 'constructor', 'go', '(callback of setTimeout)'],
  );
});

test('a doctored 61-line function and a 301-line file are reported; 60 and 300 are not', () => {
  const fn = (name: string, lines: number) => `function ${name}() {\n  let x = 0;\n${body(lines - 3)}\n}\n`;
  const files = new Map([
    ['ok.ts', fn('fits', 60)],
    ['long.ts', fn('tooLong', 61)],
    ['big.ts', `${'const a = 1;\n'.repeat(301)}`],
    ['edge.ts', `${'const a = 1;\n'.repeat(300)}`],
  ]);
  const r = overLimits(files, 60, 300);
  assert.equal(
    r.functions.map((f) => [f.file, f.name, f.lines]),
    [['long.ts', 'tooLong', 61]],
  );
  assert.equal(r.files, [{ file: 'big.ts', lines: 301 }]);
  assert.is(lineCount('a\nb\n'), 2);
  assert.is(lineCount('a\nb'), 2);
});

test.run();
