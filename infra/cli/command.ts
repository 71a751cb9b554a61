import { ConfigError } from '../config';
import { log } from '../log';
import { CliError, UsageError } from './args';

/**
 * Runs a command's body: `--help` text is the body's to print (exit 0); a usage error prints the
 * reason and the usage (exit 2); a bad setting or a failure prints one line, no stack (exit 1;
 * LOG_LEVEL=debug adds the stack).
 */
export async function runCommand(body: () => Promise<void | number>): Promise<never> {
  try {
    const code = await body();
    process.exit(typeof code === 'number' ? code : 0);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${err.usage}\n`);
      process.exit(2);
    }
    if (err instanceof ConfigError) process.stderr.write(err.problems.map((p) => `configuration error: ${p}\n`).join(''));
    else if (err instanceof CliError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`failed: ${(err as Error)?.message ?? String(err)}\n`);
    log.debug({ err }, 'command failed');
    process.exit(1);
  }
}
