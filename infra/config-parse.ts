/** The parsing and checking of single settings, for infra/config.ts (which re-exports what others use). */

/** Wrong settings: one line per wrong variable, all of them at once; the process stops with them. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'));
    this.problems = list;
  }
}

export type RedisClusterSetting = Readonly<{
  nodes: ReadonlyArray<Readonly<{ host: string; port: number }>>;
  username?: string;
  password?: string;
  tls: boolean;
}>;

/** `host:port,host:port` or `redis[s]://[user:pass@]host:port,...`; credentials and TLS of the first URL apply to every node. */
export function clusterSetting(env: NodeJS.ProcessEnv): RedisClusterSetting | undefined {
  const raw = env.REDIS_CLUSTER_NODES?.trim();
  if (!raw) return undefined;
  let auth: Omit<RedisClusterSetting, 'nodes'> | undefined;
  const nodes = raw.split(',').map((entry, i) => {
    const e = entry.trim();
    const u = (() => {
      try {
        return new URL(/^[a-z]+:\/\//i.test(e) ? e : `redis://${e}`);
      } catch {
        return undefined;
      }
    })();
    const port = Number(u?.port);
    if (!u || !['redis:', 'rediss:'].includes(u.protocol) || !u.hostname || !Number.isInteger(port) || port < 1 || port > 65535 || (u.pathname && u.pathname !== '/')) {
      throw new ConfigError(`REDIS_CLUSTER_NODES: entry ${i + 1} ${JSON.stringify(e)} is not host:port (or redis://[user:pass@]host:port)`);
    }
    auth ??= /^[a-z]+:\/\//i.test(e) ? { username: decodeURIComponent(u.username) || undefined, password: decodeURIComponent(u.password) || undefined, tls: u.protocol === 'rediss:' } : undefined;
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port };
  });
  return { nodes, tls: false, ...auth };
}

export function urlSetting(env: NodeJS.ProcessEnv, name: string, fallback: string, protocols: string[]): string {
  const raw = env[name]?.trim();
  return raw ? checkUrl(name, raw, protocols) : fallback;
}

export function checkUrl(name: string, raw: string, protocols: string[]): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: ${JSON.stringify(raw)} is not a URL`);
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(`${name}: expected a ${protocols.join(' or ')} URL, got ${JSON.stringify(raw)}`);
  if (protocols[0] === 'postgres:' && !u.pathname.replace(/^\//, '')) throw new ConfigError(`${name}: ${JSON.stringify(raw)} names no database`);
  return raw;
}

/** A whole-number setting from `min` to `max`; anything else is a ConfigError naming the variable. */
export function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}
