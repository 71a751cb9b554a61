import { processSwitches } from './config';

/**
 * Fault injection for the fault suite: `AQ_CRASH_AT=<point>` makes the process die at that point,
 * as a SIGKILL would (no cleanup, no ack). Unset in production; a no-op then.
 */
const target = processSwitches().crashAt;

export function crashPoint(point: string): void {
  if (target === point) process.kill(process.pid, 'SIGKILL');
}
