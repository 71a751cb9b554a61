import amqplib, { type ChannelModel, type Options, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from '../log';
import { brokerReconnects } from '../metrics';

export type ConnectionOptions = Readonly<{
  /** One or more broker addresses (a cluster): each (re)connect attempt takes the next one. */
  urls: readonly string[];
  heartbeatSeconds: number;
  /** Shown in the broker's connection list. */
  name: string;
  log: Logger;
  /** Runs after every (re)connect, before the connection is used: topology, channels, consumers. */
  setup(model: ChannelModel): Promise<void>;
}>;

/**
 * amqplib's recovering connection over several broker addresses. amqplib reads the address fields
 * afresh on every attempt, `protocol` first: reading it moves on to the next address, so recovery
 * after a lost node goes to another one. It never gives up: while the broker is away the worker
 * stays up, holds its messages and says so in /healthz.
 */
export function rotatingAddress(urls: readonly string[], heartbeatSeconds: number): Options.Connect {
  const parsed = urls.map((u) => new URL(u));
  let i = -1;
  const at = () => parsed[Math.max(0, i) % parsed.length]!;
  return {
    get protocol() {
      i++;
      return at().protocol.replace(/:$/, '');
    },
    get hostname() {
      return at().hostname.replace(/^\[|\]$/g, '');
    },
    get port() {
      return at().port ? Number(at().port) : undefined;
    },
    get username() {
      return decodeURIComponent(at().username) || 'guest';
    },
    get password() {
      return at().password ? decodeURIComponent(at().password) : at().username ? '' : 'guest';
    },
    get vhost() {
      return decodeURIComponent(at().pathname.replace(/^\//, '')) || '/';
    },
    heartbeat: heartbeatSeconds,
  };
}

export async function openConnection(o: ConnectionOptions): Promise<RecoveringChannelModel> {
  let setups = 0;
  const connection = await amqplib.connect(rotatingAddress(o.urls, o.heartbeatSeconds), {
    clientProperties: { connection_name: `activity-quota:${o.name}:${process.pid}` },
    // Small frames (acks, replies, confirms) must not wait for Nagle + delayed ACK (~40 ms each).
    noDelay: true,
    // A TCP connect that is not answered (a dead node, dropped packets) gives up and tries the next address.
    timeout: 5_000,
    recovery: {
      initialDelay: 200,
      maxDelay: 5_000,
      maxRetries: Infinity,
      async setup(m: ChannelModel) {
        coalesceWrites(m, o.log);
        if (setups++) brokerReconnects.inc();
        await o.setup(m);
      },
    },
  });
  connection.on('error', (err: Error) => o.log.warn({ err }, 'broker connection error'));
  connection.on('handler-error', (err: Error, event: string) => o.log.error({ err, event }, 'error in a broker event listener'));
  connection.on('connect-failed', (err: Error) => o.log.warn({ err }, 'broker connect failed, retrying'));
  return connection;
}

/**
 * With TCP_NODELAY every frame amqplib writes is a packet of its own: an ack, a reply, a publish
 * each cost a syscall here and a read at the broker. amqplib's multiplexer writes all frames queued
 * in one turn of the event loop in one go (`_readIncoming`, run from setImmediate); corking the
 * socket around it turns that go into one write. No frame waits longer than before.
 * amqplib internals (`connection.muxer`, `connection.stream`): if they are not there, nothing changes.
 */
function coalesceWrites(m: ChannelModel, log: Logger): void {
  type Writable = { cork(): void; uncork(): void };
  const conn = (m as unknown as { connection?: { muxer?: { _readIncoming?: () => void }; stream?: Partial<Writable> } }).connection;
  const mux = conn?.muxer;
  const out = conn?.stream;
  if (!mux || typeof mux._readIncoming !== 'function' || typeof out?.cork !== 'function' || typeof out.uncork !== 'function') {
    log.warn('amqplib internals changed: frames are written one by one');
    return;
  }
  const drainQueued = mux._readIncoming.bind(mux);
  const socket = out as Writable;
  mux._readIncoming = () => {
    socket.cork();
    try {
      drainQueued();
    } finally {
      socket.uncork();
    }
  };
}
