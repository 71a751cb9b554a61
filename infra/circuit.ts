/**
 * A circuit breaker per dependency (a shard database, the global database). After an outage
 * failure it opens: calls fail at once, without a round trip, so that the messages of that
 * dependency are parked quickly and the consumer's capacity goes to the healthy ones. After a
 * pause (doubling from `minOpenMs` to `maxOpenMs`) it lets one probe call through (half-open);
 * the probe's success closes it, its failure opens it again.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export type Circuit = Readonly<{
  scope: string;
  /** May a call go out now? In half-open, only one at a time (the probe). */
  allow(now?: number): boolean;
  succeeded(): void;
  /** An outage failure (contention does not count). */
  failed(now?: number): void;
  state(now?: number): CircuitState;
}>;

export type CircuitSettings = Readonly<{ minOpenMs: number; maxOpenMs: number }>;

export function circuit(scope: string, s: CircuitSettings, onChange?: (state: CircuitState) => void): Circuit {
  let state: CircuitState = 'closed';
  let openUntil = 0;
  let openMs = s.minOpenMs;
  let probing = false;
  const set = (next: CircuitState) => {
    if (next !== state) (state = next), onChange?.(next);
  };
  const current = (now: number): CircuitState => (state === 'open' && now >= openUntil ? 'half-open' : state);
  return {
    scope,
    allow(now = Date.now()) {
      const st = current(now);
      if (st === 'closed') return true;
      if (st === 'open' || probing) return false;
      probing = true;
      set('half-open');
      return true;
    },
    succeeded() {
      probing = false;
      openMs = s.minOpenMs;
      set('closed');
    },
    failed(now = Date.now()) {
      if (state !== 'closed') openMs = Math.min(openMs * 2, s.maxOpenMs);
      probing = false;
      openUntil = now + openMs;
      set('open');
    },
    state: (now = Date.now()) => current(now),
  };
}
