import { loadConfig } from '../config';
import { migrate } from '../migrate';
import { log } from '../log';
import { UsageError, parseCommand, reach, write } from './args';
import { runCommand } from './command';

const USAGE = `usage: npm run migrate
Creates the global and shard databases if missing and applies pending migrations (idempotent).
options: -h, --help`;

await runCommand(async () => {
  const { values, positionals } = parseCommand(process.argv.slice(2), {}, USAGE);
  if (values.help) return void write(USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`, USAGE);
  const config = loadConfig();
  const { created, applied } = await reach('PostgreSQL', [config.databaseUrl, ...config.shardUrls], () => migrate(config));
  log.info({ created, applied }, applied.length || created.length ? 'migrated' : 'schema already up to date');
});
