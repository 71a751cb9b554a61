import net from 'node:net';

/**
 * A TCP fault proxy for tests (no Toxiproxy here): listens on a local port and forwards every
 * connection to `target`. Faults, each until `restore()`:
 * - `cut()`: destroys every open connection (both sides), like a dropped link or a restarted server;
 * - `stall()`: stops moving bytes both ways on open and new connections (a partition: nothing is
 *   lost, the kernel buffers fill up, peers see silence); `restore()` lets the buffered bytes through;
 * - `down()`: cuts everything and refuses new connections at once (the service looks dead);
 * - `drop()`: a silent path: every byte both ways is thrown away, nothing is closed, no RST; new
 *   connections are accepted and get the same. Like a stateful firewall that lost a connection's
 *   state, a connection that lost bytes stays silent for good (its stream could not be resumed):
 *   only the client's own timeouts notice it (the proxy's kernel still answers TCP keepalives).
 *   After `restore()` connections that lost nothing, and new ones, work again.
 * Point a world's URL at `url(original)` to put the proxy in front of that service.
 */
export type FaultProxy = Readonly<{
  port: number;
  /** The same URL with host:port replaced by the proxy's. */
  url(original: string): string;
  cut(): number;
  stall(): void;
  down(): number;
  drop(): void;
  restore(): void;
  /** Open client connections right now. */
  connections(): number;
  /** Connections accepted since the start. */
  accepted(): number;
  close(): Promise<void>;
}>;

type Pair = { client: net.Socket; server: net.Socket; silent: boolean; watched: boolean };

export async function startProxy(target: { host: string; port: number }, listenPort = 0): Promise<FaultProxy> {
  let mode: 'forward' | 'stall' | 'down' | 'drop' = 'forward';
  const pairs = new Set<Pair>();
  let accepted = 0;

  const destroy = (p: Pair) => {
    p.client.destroy();
    p.server.destroy();
    pairs.delete(p);
  };

  const server = net.createServer((client) => {
    accepted++;
    client.on('error', () => undefined);
    if (mode === 'down') return void client.destroy();
    const upstream = net.connect(target.port, target.host);
    upstream.on('error', () => undefined);
    const p: Pair = { client, server: upstream, silent: false, watched: false };
    pairs.add(p);
    // pipe() with pause/resume: a stalled pair keeps its bytes in the socket buffers.
    if (mode === 'drop') mute(p);
    else client.pipe(upstream), upstream.pipe(client);
    if (mode === 'stall') client.pause(), upstream.pause();
    const close = () => destroy(p);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  /**
   * Stops forwarding on this pair: whatever arrives now is thrown away, and a pair that threw a byte
   * away stays silent for good. Ends are not passed on (unpipe), so no FIN or RST reaches the
   * other side; a socket closed by its own peer still ends the pair.
   */
  const mute = (p: Pair) => {
    p.client.unpipe(p.server);
    p.server.unpipe(p.client);
    if (p.watched) return;
    p.watched = true;
    const swallow = () => {
      if (mode === 'drop') p.silent = true;
    };
    for (const s of [p.client, p.server]) s.on('data', swallow), s.resume();
  };

  const cut = () => {
    const n = pairs.size;
    for (const p of [...pairs]) destroy(p);
    return n;
  };

  return {
    port,
    url(original) {
      const u = new URL(original);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut,
    stall() {
      mode = 'stall';
      for (const p of pairs) p.client.pause(), p.server.pause();
    },
    down() {
      mode = 'down';
      return cut();
    },
    drop() {
      mode = 'drop';
      for (const p of pairs) mute(p);
    },
    restore() {
      mode = 'forward';
      for (const p of pairs) {
        if (p.silent) continue;
        if (p.watched) p.client.unpipe(p.server), p.server.unpipe(p.client), p.client.pipe(p.server), p.server.pipe(p.client);
        p.client.resume();
        p.server.resume();
      }
    },
    connections: () => pairs.size,
    accepted: () => accepted,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
