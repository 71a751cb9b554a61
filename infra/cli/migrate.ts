import { loadConfig } from '../config';
import { migrate } from '../migrate';
import { log } from '../log';
import { runCommand } from './command';

await runCommand(async () => {
  const { created, applied } = await migrate(loadConfig());
  log.info({ created, applied }, applied.length || created.length ? 'migrated' : 'schema already up to date');
});
