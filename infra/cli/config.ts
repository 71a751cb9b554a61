import { effectiveSettings, loadConfig } from '../config';
import { UsageError, parseCommand, write } from './args';
import { runCommand } from './command';

const USAGE = `usage: npm run config -- check [--json]
  check    read every setting from the environment as the workers do; print the effective
           configuration (passwords masked), or one line per wrong setting (exit 1)
options: --json (one JSON object), -h, --help`;

await runCommand(async () => {
  const { values, positionals } = parseCommand(process.argv.slice(2), { json: { type: 'boolean' } } as const, USAGE);
  if (values.help) return void write(USAGE);
  const [verb, ...rest] = positionals;
  if (verb !== 'check') throw new UsageError(verb ? `unknown command ${JSON.stringify(verb)}` : 'missing command (check)', USAGE);
  if (rest.length) throw new UsageError(`unexpected argument ${rest[0]}`, USAGE);
  const settings = effectiveSettings(loadConfig());
  if (values.json) return void write(JSON.stringify(settings));
  const width = Math.max(...Object.keys(settings).map((k) => k.length));
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v ?? null));
  write(
    Object.entries(settings)
      .map(([k, v]) => `${k.padEnd(width)}  ${show(v)}`)
      .join('\n'),
  );
});
