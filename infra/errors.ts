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

const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /connection is closed/i,
  /stream isn't writeable/i,
  /timeout exceeded when trying to connect/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
  /max retries per request/i,
  /channel (closed|ended)/i,
  /connection closed/i,
  /the database system is (starting up|shutting down)/i,
  // Redis Cluster: a failover or resharding in progress, or a take no replica confirmed yet.
  /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|MASTERDOWN|READONLY) /,
  /too many cluster redirections/i,
  /command aborted due to connection close/i,
  /cluster isn't ready/i,
  /failed to refresh slots cache/i,
  /none of startup nodes is available/i,
  /^redis replication: .* not confirmed by/,
];

/**
 * A failure that goes away by itself (database, Redis or broker unreachable, a deadlock, a
 * serialisation failure): retry the message, never dead-letter it.
 */
export function isTransient(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  if (err instanceof PermanentError) return false;
  const e = err as { code?: unknown; driverError?: unknown; message?: unknown; cause?: unknown };
  if (e.driverError && e.driverError !== err && isTransient(e.driverError)) return true;
  if (e.cause && e.cause !== err && isTransient(e.cause)) return true;
  const code = typeof e.code === 'string' ? e.code : '';
  if (TRANSIENT_NODE_CODES.has(code)) return true;
  // SQLSTATE: 08 connection exception, 57P0x shutdown, 53300 too many connections, 40001/40P01 retry.
  if (/^08/.test(code) || /^57P0[123]$/.test(code) || code === '53300' || code === '40001' || code === '40P01') return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return TRANSIENT_MESSAGES.some((re) => re.test(msg));
}
