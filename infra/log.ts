import { pino, type Logger } from 'pino';

export type { Logger };

/** One root logger per process; workers take a child with `{ worker }`. Logs go to stdout as JSON. */
export const log: Logger = pino({ level: process.env.LOG_LEVEL?.trim() || 'info', base: { pid: process.pid } });
