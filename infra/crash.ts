import fs from 'node:fs';
import { processSwitches } from './config';

/**
 * Fault injection for the fault suite: `AQ_CRASH_AT=<point>` makes the process die at that point,
 * as a SIGKILL would (no cleanup, no ack). With `AQ_CRASH_MARKER=<file>` it first appends the point
 * to that file, so that the test can tell a death at the point from one at start-up. Unset in
 * production; a no-op then.
 */
const { crashAt: target, crashMarker: marker } = processSwitches();

export function crashPoint(point: string): void {
  if (target !== point) return;
  if (marker) fs.appendFileSync(marker, `${point} pid=${process.pid} at=${new Date().toISOString()}\n`);
  process.kill(process.pid, 'SIGKILL');
}
