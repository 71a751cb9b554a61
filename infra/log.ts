import { pino, type Logger } from 'pino';
import { initialLogLevel } from './config';
import { logFieldsOf } from './trace-context';

export type { Logger };

/**
 * One root logger per process; workers take a child with `{ worker }`. Logs go to stdout as JSON.
 * Every line written while a delivery is handled carries its `messageId` and `correlationId` (and
 * `trace_id` / `span_id` when it is traced), whichever logger writes it: the mixin reads them from
 * the active context, which the consumer sets per delivery (infra/amqp/consumer.ts).
 */
// A wrong LOG_LEVEL is reported by loadConfig with every other wrong setting; until then, info.
export const log: Logger = pino({ level: initialLogLevel(), base: { pid: process.pid }, mixin: () => logFieldsOf() });
