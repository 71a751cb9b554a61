import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CONTRACT_DIR, asyncApiProblems, expectedFiles, staleFiles, writeFiles } from '../contract/generate';
import { runCommand } from './command';

const USAGE = `usage: npm run contract -- generate   write docs/contract (JSON Schema files, asyncapi.yaml, asyncapi.json) from infra/contract
       npm run contract -- check      exit 1 when a generated file is missing, stale or extra, or the AsyncAPI document is invalid
options: -h, --help`;

await runCommand(async () => {
  const parsed = parseOrExplain(process.argv.slice(2));
  if (!parsed) return 2;
  const [verb, ...rest] = parsed.positionals;
  if (parsed.values.help) return void process.stdout.write(`${USAGE}\n`);
  if (rest.length || (verb !== 'generate' && verb !== 'check')) {
    process.stderr.write(`${verb === undefined ? 'missing command' : rest.length ? `unexpected argument ${rest[0]}` : `unknown command ${JSON.stringify(verb)}`}\n${USAGE}\n`);
    return 2;
  }
  const { version } = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
  const want = expectedFiles(version);
  const invalid = asyncApiProblems(JSON.parse(want.get('asyncapi.json')!));
  if (invalid.length) {
    process.stderr.write(`the AsyncAPI document does not validate against AsyncAPI 3.0.0:\n${invalid.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  if (verb === 'generate') {
    writeFiles(CONTRACT_DIR, want);
    return void process.stdout.write(`wrote ${want.size} files to docs/contract\n`);
  }
  const problems = staleFiles(CONTRACT_DIR, want);
  if (!problems.length) return void process.stdout.write(`docs/contract is up to date (${want.size} files)\n`);
  process.stderr.write(`docs/contract is out of date with infra/contract:\n${problems.map((p) => `  ${p}`).join('\n')}\nrun: npm run contract -- generate (and commit the result)\n`);
  return 1;
});

/** The command line, or undefined after printing why it is wrong and the usage. */
function parseOrExplain(args: string[]) {
  try {
    return parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return undefined;
  }
}
