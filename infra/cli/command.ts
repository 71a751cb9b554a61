import { ConfigError } from '../config';
import { log } from '../log';

/** Runs a command's body; a bad setting or failure prints one clear line and exits non-zero. */
export async function runCommand(body: () => Promise<void | number>): Promise<never> {
  try {
    const code = await body();
    process.exit(typeof code === 'number' ? code : 0);
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`configuration error: ${err.message}\n`);
    else log.error({ err }, 'command failed');
    process.exit(1);
  }
}
