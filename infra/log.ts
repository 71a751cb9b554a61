import { pino, type Logger } from 'pino';
import { initialLogLevel } from './config';

export type { Logger };

/** One root logger per process; workers take a child with `{ worker }`. Logs go to stdout as JSON. */
// A wrong LOG_LEVEL is reported by loadConfig with every other wrong setting; until then, info.
export const log: Logger = pino({ level: initialLogLevel(), base: { pid: process.pid } });
