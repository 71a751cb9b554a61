import { pino, type Logger } from 'pino';
import { LOG_LEVELS } from './config';

export type { Logger };

/** One root logger per process; workers take a child with `{ worker }`. Logs go to stdout as JSON. */
// A wrong LOG_LEVEL is reported by loadConfig with every other wrong setting; until then, info.
const level = process.env.LOG_LEVEL?.trim() || 'info';
export const log: Logger = pino({ level: LOG_LEVELS.includes(level) ? level : 'info', base: { pid: process.pid } });
