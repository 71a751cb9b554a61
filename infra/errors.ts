/**
 * Why a message cannot be processed, ever: it goes to the dead-letter queue with this code and reason.
 * Codes are a closed set so that operators can count and filter them.
 */
export type PermanentCode = 'INVALID_JSON' | 'INVALID_MESSAGE' | 'NO_REPLY_TO' | 'HANDLER_FAILED';

export class PermanentError extends Error {
  constructor(
    readonly code: PermanentCode,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
    this.name = 'PermanentError';
  }
}

/**
 * `outage`: a dependency is unreachable or refuses work (down, read-only, out of connections): the
 * message waits, and other messages of the same dependency are held back by its circuit.
 * `contention`: the work collided with other work (deadlock, serialisation, lock timeout): retry soon.
 */
export type TransientKind = 'outage' | 'contention';

/**
 * A failure that goes away by itself: retry the message, never dead-letter it. `scope` names the
 * dependency (`shard:2`, `global`, `redis`, `broker`), so that one dependency's trouble holds only
 * the messages that need it.
 */
export class TransientError extends Error {
  constructor(
    readonly scope: string,
    readonly kind: TransientKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** What a failure means for the message that met it (the input of the consumer policy). */
export type Failure =
  | Readonly<{ kind: 'permanent'; code: PermanentCode; reason: string }>
  | Readonly<{ kind: 'transient'; scope: string; outage: boolean; reason: string }>
  | Readonly<{ kind: 'unknown'; reason: string }>;

/**
 * SQLSTATE classes and codes that mean "the database, not the message": connection exception (08),
 * insufficient resources (53), operator intervention (57P: shutdown, cannot connect now; 57014 a
 * cancelled statement), not accepting connections (55000), read-only transaction after a failover
 * (25006), system error (58); transaction rollback (40: serialisation, deadlock) and lock timeout
 * (55P03) are contention. Everything else (constraint violations, syntax, …) is the message's or the
 * code's own failure.
 */
export function sqlStateKind(code: string): TransientKind | undefined {
  if (!/^[0-9A-Z]{5}$/.test(code)) return undefined;
  const cls = code.slice(0, 2);
  if (cls === '08' || cls === '53' || cls === '58' || code.startsWith('57P') || code === '55000' || code === '25006') return 'outage';
  if (cls === '40' || code === '57014' || code === '55P03') return 'contention';
  return undefined;
}

/** Node system errors of a network path (no message text involved). */
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'EADDRNOTAVAIL']);

/** Redis error replies that mean the server or cluster is not ready (the first word of the reply is its code). */
// MOVED / ASK: a cluster slot moved (a failover, a resharding); the client follows them except inside a pipeline.
const REDIS_OUTAGE_CODES = new Set(['LOADING', 'BUSY', 'CLUSTERDOWN', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'NOREPLICAS', 'MOVED', 'ASK']);

/**
 * AMQP reply codes of a connection or channel the broker closed that mean "the broker, not the
 * message": 320 connection-forced (node stopping), 504 channel-error, 505 unexpected-frame, 506
 * resource-error (a queue's resources), 541 internal-error. 403 access-refused, 404 not-found and
 * 406 precondition-failed are configuration or code bugs, not outages.
 */
const AMQP_OUTAGE_CODES = new Set([320, 504, 505, 506, 541]);

/** amqplib's errors: a close by the broker (numeric reply code), or an operation on a channel or connection already closed. */
function isAmqpOutage(e: { code?: unknown; name?: unknown }): boolean {
  return (typeof e.code === 'number' && AMQP_OUTAGE_CODES.has(e.code)) || e.name === 'IllegalOperationError';
}

/** The transient kind of an error by its kind and code, walking `cause` chains; undefined if it is not transient. */
export function transientKind(err: unknown, depth = 0): TransientKind | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  if (err instanceof TransientError) return err.kind;
  if (err instanceof PermanentError) return undefined;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (NETWORK_ERRNOS.has(code) || isAmqpOutage(e)) return 'outage';
  if (e.name === 'DatabaseError' || /^[0-9A-Z]{5}$/.test(code)) {
    const k = sqlStateKind(code);
    if (k) return k;
  }
  if (e.name === 'ReplyError' && typeof e.message === 'string' && REDIS_OUTAGE_CODES.has(e.message.split(' ', 1)[0]!)) return 'outage';
  return transientKind(e.cause, depth + 1);
}

export const isTransient = (err: unknown): boolean => transientKind(err) !== undefined;

/** The scope of a transient error: the innermost TransientError's, `broker` for amqplib's own, else `fallback`. */
function scopeOf(err: unknown, fallback: string, depth = 0): string {
  if (!err || typeof err !== 'object' || depth > 5) return fallback;
  if (err instanceof TransientError) return err.scope;
  if (isAmqpOutage(err as { code?: unknown; name?: unknown })) return 'broker';
  return scopeOf((err as { cause?: unknown }).cause, fallback, depth + 1);
}

export function classify(err: unknown): Failure {
  if (err instanceof PermanentError) return { kind: 'permanent', code: err.code, reason: err.reason };
  const reason = String((err as Error)?.message ?? err);
  const k = transientKind(err);
  if (k) return { kind: 'transient', scope: scopeOf(err, 'dependency'), outage: k === 'outage', reason };
  return { kind: 'unknown', reason };
}
