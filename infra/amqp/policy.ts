import type { Failure, PermanentCode } from '../errors';

/**
 * What happens to a delivery, decided in one place and without IO. How each outcome maps on the
 * broker (RabbitMQ 3.x counts every return of a quorum-queue message towards its delivery limit;
 * 4.3+ counts `basic.reject` and a closed channel, not `basic.nack`):
 * - `ack`: done.
 * - `dead-letter`: a copy with the reason goes to `activity.dead-letter` (confirmed), then ack.
 * - `hold`: the delivery stays unacknowledged and the handler runs again after `delayMs`: the broker
 *   counts nothing. Used for contention and, up to `outageHold` per dependency, for outages (these
 *   are the probes that notice the dependency is back).
 * - `park`: a copy goes to the park queue (confirmed), then ack; it comes back after PARK_MS with
 *   the message's own failure count in `x-aq-failures`. Counts nothing on any broker, so no outage
 *   of any length dead-letters a message.
 * - `requeue` `reject`: the message's own failure: it counts on every broker version, and the
 *   delivery limit dead-letters a message that keeps failing (or crashing its worker).
 * - `requeue` `nack`: not the message's fault (the worker is stopping): free on 4.3+, one count on 3.x.
 */
export type Outcome =
  | Readonly<{ kind: 'ack' }>
  | Readonly<{ kind: 'dead-letter'; code: PermanentCode; reason: string }>
  | Readonly<{ kind: 'hold'; scope: string; delayMs: number }>
  | Readonly<{ kind: 'park'; scope: string; failures: number }>
  | Readonly<{ kind: 'requeue'; how: 'reject' | 'nack'; delayMs: number }>;

export type Delivery = Readonly<{
  /** The message's own failures before this delivery: the broker's `x-delivery-count` plus `x-aq-failures` carried through parking. */
  failures: number;
  /** Handler runs so far on this delivery (0 for the first). */
  attempt: number;
  /** The dependency this delivery is already held for, if any. */
  holding?: string;
}>;

export type ConsumerState = Readonly<{
  stopping: boolean;
  deliveryLimit: number;
  /** Deliveries of this consumer held right now for each dependency. */
  held: ReadonlyMap<string, number>;
  outageHold: number;
  /** False while the broker cannot take a park publish. */
  canPark: boolean;
}>;

const backoff = (attempt: number, firstMs: number, maxMs: number) => Math.min(firstMs * 2 ** attempt, maxMs);

export function decide(failure: Failure | undefined, d: Delivery, s: ConsumerState): Outcome {
  if (!failure) return { kind: 'ack' };
  if (s.stopping) return { kind: 'requeue', how: 'nack', delayMs: 0 };
  switch (failure.kind) {
    case 'permanent':
      return { kind: 'dead-letter', code: failure.code, reason: failure.reason };
    case 'transient': {
      if (!failure.outage) return { kind: 'hold', scope: failure.scope, delayMs: backoff(d.attempt, 20, 1_000) };
      const held = s.held.get(failure.scope) ?? 0;
      if (d.holding === failure.scope || held < s.outageHold || !s.canPark) return { kind: 'hold', scope: failure.scope, delayMs: backoff(d.attempt, 200, 5_000) };
      return { kind: 'park', scope: failure.scope, failures: d.failures };
    }
    case 'unknown': {
      const failures = d.failures + 1;
      if (failures >= s.deliveryLimit) return { kind: 'dead-letter', code: 'HANDLER_FAILED', reason: `failed ${failures} times: ${failure.reason}` };
      return { kind: 'requeue', how: 'reject', delayMs: backoff(failures, 100, 5_000) };
    }
    default: {
      const _exhaustive: never = failure;
      throw new Error(`unknown failure ${JSON.stringify(_exhaustive)}`);
    }
  }
}

/** The message's own failures so far, from its headers. */
export function failuresOf(headers: Record<string, unknown> | undefined): number {
  const n = (v: unknown) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Math.floor(Number(v)) : 0);
  return n(headers?.['x-delivery-count']) + n(headers?.['x-aq-failures']);
}
