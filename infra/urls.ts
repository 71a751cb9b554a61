/** URL helpers of the settings: masking passwords, database names. */

/** The URL with its password replaced by `***`, for messages and printed settings. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/** `postgres://h/activity` + `_01` → `postgres://h/activity_01` (query string kept). */
export function withDatabaseSuffix(databaseUrl: string, suffix: string): string {
  const u = new URL(databaseUrl);
  u.pathname = `/${databaseName(databaseUrl)}${suffix}`;
  return u.toString();
}

export function databaseName(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
}
