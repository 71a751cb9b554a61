import net from 'node:net';

/**
 * A TCP fault proxy for tests (no Toxiproxy here): listens on a local port and forwards every
 * connection to `target`. Faults, each until `restore()`:
 * - `cut()`: destroys every open connection (both sides), like a dropped link or a restarted server;
 * - `stall()`: stops moving bytes both ways on open and new connections (a partition: nothing is
 *   lost, the kernel buffers fill up, peers see silence); `restore()` lets the buffered bytes through;
 * - `down()`: cuts everything and refuses new connections at once (the service looks dead).
 * Point a world's URL at `url(original)` to put the proxy in front of that service.
 */
export type FaultProxy = Readonly<{
  port: number;
  /** The same URL with host:port replaced by the proxy's. */
  url(original: string): string;
  cut(): number;
  stall(): void;
  down(): number;
  restore(): void;
  /** Open client connections right now. */
  connections(): number;
  /** Connections accepted since the start. */
  accepted(): number;
  close(): Promise<void>;
}>;

type Pair = { client: net.Socket; server: net.Socket };

export async function startProxy(target: { host: string; port: number }, listenPort = 0): Promise<FaultProxy> {
  let mode: 'forward' | 'stall' | 'down' = 'forward';
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
    const p: Pair = { client, server: upstream };
    pairs.add(p);
    // pipe() with pause/resume: a stalled pair keeps its bytes in the socket buffers.
    client.pipe(upstream);
    upstream.pipe(client);
    if (mode === 'stall') (client.pause(), upstream.pause());
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
      for (const p of pairs) (p.client.pause(), p.server.pause());
    },
    down() {
      mode = 'down';
      return cut();
    },
    restore() {
      mode = 'forward';
      for (const p of pairs) (p.client.resume(), p.server.resume());
    },
    connections: () => pairs.size,
    accepted: () => accepted,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
