import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GetMessage } from 'amqplib';
import pg from 'pg';
import { connect, ReplyLostError, TimeoutError, type Client } from '../../infra/client';
import type { Config } from '../../infra/config';
import { log } from '../../infra/log';
import { connectRedis } from '../../infra/redis';
import { oldReservations } from '../../infra/stock';
import { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, INPUT_QUEUES } from '../../infra/topology';
import { checkBooks, type Books, type CatalogFile, type History, type SeenEvent } from '../support/books';
import { createTestEnv, type TestEnv } from '../support/env';
import { startProxy, type FaultProxy } from '../support/proxy';

const exec = promisify(execFile);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const ROOT = path.resolve(import.meta.dirname, '../..');
/** The observer's durable queue: it outlives a broker restart and the test's own connection. */
const OBSERVER_QUEUE = 'faults.observer.events';

export type ProxiedService = 'pg' | 'amqp' | 'redis';

/** `rabbitmqctl -q list_queues -p VHOST COLUMNS…` on the broker the world lives on (the machine's node by default, a cluster node in the cluster world). */
export type ListQueues = (vhost: string, columns: string[]) => Promise<string>;
const machineListQueues: ListQueues = async (vhost, columns) => (await exec('rabbitmqctl', ['-q', 'list_queues', '-p', vhost, ...columns], { timeout: 30_000 })).stdout;

/** Every service process group started and not yet exited (for a signal handler to kill). */
export const liveProcs = new Set<Proc>();

/** A running `npm start` (or `npm run worker -- NAME`) in its own process group. */
export type Proc = {
  child: ChildProcess;
  name: string;
  log: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
};

/**
 * One scenario's world: an isolated test env (own databases, vhost, Redis db), optional fault
 * proxies in front of services, the catalog, the service processes and a caller + observer.
 */
export class World {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aq-faults-'));
  readonly procs: Proc[] = [];
  proxies: Partial<Record<ProxiedService, FaultProxy>> = {};
  /** The environment given to service processes (URLs through proxies where asked). */
  serviceEnv: Record<string, string> = {};
  caller!: Caller;
  /** The catalog last loaded: the books judge rejections and stock by it. */
  catalog?: CatalogFile;
  private constructor(
    readonly env: TestEnv,
    private readonly listQueues: ListQueues,
  ) {}

  get config(): Config {
    return this.env.config;
  }
  get vhost(): string {
    return this.env.id;
  }

  /** `env`/`listQueues` put the world elsewhere (the cluster world); by default on the machine's services. */
  static async create(o: { proxies?: ProxiedService[]; extra?: Record<string, string>; env?: (extra: Record<string, string>) => Promise<TestEnv>; listQueues?: ListQueues } = {}): Promise<World> {
    // The workers' /metrics on free ports: a stall or outage scenario reads them to show the fault was felt.
    const metricsPort = String(await freePorts(WORKER_PORTS));
    const extra = { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', METRICS_PORT: metricsPort, ...o.extra };
    const env = await (o.env ? o.env(extra) : createTestEnv({ extra }));
    const w = new World(env, o.listQueues ?? machineListQueues);
    try {
      w.serviceEnv = { ...env.env, AQ_CRASH_MARKER: w.crashMarker };
      for (const s of o.proxies ?? []) {
        if (s === 'pg') {
          const p = (w.proxies.pg = await startProxy({ host: '127.0.0.1', port: Number(new URL(env.config.databaseUrl).port || 5432) }));
          w.serviceEnv.DATABASE_URL = p.url(env.config.databaseUrl);
          w.serviceEnv.SHARD_DATABASE_URLS = env.config.shardUrls.map((u) => p.url(u)).join(',');
        } else if (s === 'amqp') {
          const p = (w.proxies.amqp = await startProxy({ host: '127.0.0.1', port: Number(new URL(env.config.amqpUrl).port || 5672) }));
          w.serviceEnv.AMQP_URL = p.url(env.config.amqpUrl);
        } else {
          const p = (w.proxies.redis = await startProxy({ host: '127.0.0.1', port: Number(new URL(env.config.redisUrl).port || 6379) }));
          w.serviceEnv.REDIS_URL = p.url(env.config.redisUrl);
        }
      }
      w.caller = await Caller.connect(env.config.amqpUrls);
      return w;
    } catch (err) {
      await w.close();
      throw err;
    }
  }

  async loadCatalog(catalog: CatalogFile): Promise<void> {
    this.catalog = catalog;
    const file = path.join(this.dir, 'catalog.json');
    fs.writeFileSync(file, JSON.stringify(catalog, null, 2));
    const r = await this.npmOnce(['run', 'catalog', '--', 'load', file]);
    if (r.code !== 0) throw new Error(`catalog load failed: ${r.out.slice(-800)}`);
  }

  npmOnce(args: string[]): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const child = spawn('npm', args, { cwd: ROOT, env: { ...process.env, ...this.env.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code, out }));
    });
  }

  /** `npm start` (or `npm run worker -- NAME` when `worker` is given) in its own process group. */
  spawn(o: { worker?: string; extra?: Record<string, string> } = {}): Proc {
    const name = o.worker ? `worker-${o.worker}` : 'npm-start';
    const log = path.join(this.dir, `${name}-${this.procs.length + 1}.log`);
    const fd = fs.openSync(log, 'a');
    const args = o.worker ? ['run', 'worker', '--', o.worker] : ['start'];
    const child = spawn('npm', args, { cwd: ROOT, env: { ...process.env, ...this.serviceEnv, ...o.extra }, detached: true, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const p: Proc = {
      child,
      name,
      log,
      done: false,
      exited: new Promise((resolve) =>
        child.on('exit', (code, signal) => {
          liveProcs.delete(p);
          p.done = true;
          p.exit = { code, signal };
          resolve({ code, signal });
        }),
      ),
    };
    this.procs.push(p);
    liveProcs.add(p);
    return p;
  }

  /** `npm start` and wait until every input queue has a consumer. */
  async start(extra?: Record<string, string>): Promise<Proc> {
    const p = this.spawn({ extra });
    await this.waitConsumers(p);
    return p;
  }

  /** Until every input queue has at least `min` consumers (two `npm start` trees: 2), twice in a row. */
  async waitConsumers(p?: Proc, timeoutMs = 60_000, min = 1): Promise<void> {
    const end = Date.now() + timeoutMs;
    let streak = 0;
    while (streak < 2) {
      if (p?.done) throw new Error(`${p.name} exited (${JSON.stringify(p.exit)}) before it was ready: ${this.tail(p)}`);
      if (Date.now() > end) throw new Error(`no consumer on every input queue after ${timeoutMs} ms: ${p ? this.tail(p) : ''}`);
      const counts = await this.consumerCounts().catch(() => undefined);
      streak = counts && INPUT_QUEUES.every((q) => (counts.get(q) ?? 0) >= min) ? streak + 1 : 0;
      await sleep(300);
    }
  }

  async consumerCounts(): Promise<Map<string, number>> {
    const stdout = await this.listQueues(this.vhost, ['name', 'consumers', 'messages']);
    return new Map(rows(stdout).map(([n, c]) => [n!, Number(c)]));
  }

  /** Messages delivered to a consumer and not yet acknowledged, over every input queue. */
  async unacked(): Promise<number> {
    const { stdout } = await exec('rabbitmqctl', ['-q', 'list_queues', '-p', this.vhost, 'name', 'messages_unacknowledged'], { timeout: 30_000 });
    return rows(stdout)
      .filter(([n]) => (INPUT_QUEUES as readonly string[]).includes(n!))
      .reduce((a, [, c]) => a + Number(c), 0);
  }

  async queueDepths(): Promise<Map<string, number>> {
    const stdout = await this.listQueues(this.vhost, ['name', 'messages']);
    return new Map(rows(stdout).map(([n, c]) => [n!, Number(c)]));
  }

  /** Tasks still to publish on every shard. */
  async pendingTasks(): Promise<number> {
    let n = 0;
    for (const url of this.config.shardUrls) {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => undefined);
      await c.connect();
      try {
        n += Number((await c.query(`SELECT count(*) AS n FROM task WHERE state IN ('create', 'fail')`)).rows[0].n);
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    return n;
  }

  /** Stock units taken by transactions not yet settled (released, given back or reaped). */
  async openReservations(): Promise<number> {
    const redis = await connectRedis(this.config, log.child({}, { level: 'silent' }), 'fault-probe');
    try {
      // Every reservation, of any age, on every master (one Redis or a cluster, under the world's key prefix).
      return (await oldReservations(redis, -1e9)).length;
    } finally {
      redis.disconnect();
    }
  }

  /** Idle: every input queue empty (ready + unacked), no task to publish and no open stock reservation, twice in a row. */
  async waitIdle(timeoutMs = 120_000): Promise<number> {
    const t0 = Date.now();
    let streak = 0;
    let last = '';
    while (streak < 2) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not idle after ${timeoutMs} ms: ${last}`);
      try {
        const depths = await this.queueDepths();
        const busy = INPUT_QUEUES.filter((q) => (depths.get(q) ?? 0) > 0).map((q) => `${q}=${depths.get(q)}`);
        const tasks = await this.pendingTasks();
        const reserved = await this.openReservations();
        last = [...busy, `pending tasks=${tasks}`, `open reservations=${reserved}`].join(', ');
        streak = busy.length === 0 && tasks === 0 && reserved === 0 ? streak + 1 : 0;
      } catch (err) {
        last = `probe failed: ${(err as Error).message}`;
        streak = 0;
      }
      await sleep(streak ? 1_000 : 500);
    }
    return Date.now() - t0;
  }

  /** A file the victims of `AQ_CRASH_AT` append their crash point to (infra/crash.ts), and what it holds. */
  get crashMarker(): string {
    return path.join(this.dir, 'crash-marker');
  }
  crashes(): string[] {
    try {
      return fs.readFileSync(this.crashMarker, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  /**
   * Failures the workers of `npm start` counted in their /metrics: held retries, parks, requeues,
   * broker reconnects, failed outbox publishes (summed over the workers that answer).
   */
  async failuresSeen(): Promise<{ total: number; answered: number; by: Record<string, number> }> {
    const base = this.config.metricsPort;
    const by: Record<string, number> = {};
    let answered = 0;
    for (let i = 0; i < WORKER_PORTS; i++) {
      const text = await fetch(`http://127.0.0.1:${base + i}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      if (text) answered++;
      for (const line of text.split('\n')) {
        const m = /^(aq_messages_total\{[^}]*outcome="(retry|park|requeue)"[^}]*\}|aq_broker_reconnects_total|aq_outbox_publish_failures_total\{[^}]*\}) ([0-9.e+]+)$/.exec(line);
        if (!m || !Number(m[3])) continue;
        const name = m[2] ? `messages:${m[2]}` : m[1]!.startsWith('aq_broker') ? 'broker reconnects' : 'outbox publish failures';
        by[name] = (by[name] ?? 0) + Number(m[3]);
      }
    }
    return { total: Object.values(by).reduce((a, b) => a + b, 0), answered, by };
  }

  /** Runs the books checker, re-reading for up to `settleMs` while only eventually-consistent mirrors disagree. */
  async check(history: Omit<History, 'events' | 'deadLetters' | 'catalog'>, settleMs = 8_000): Promise<Books> {
    if (!this.catalog) throw new Error('no catalog loaded: the books need it');
    const end = Date.now() + settleMs;
    for (;;) {
      const events = await this.caller.drainEvents();
      const deadLetters = await this.caller.drainDeadLetters();
      const books = await checkBooks(this.config, { ...history, catalog: this.catalog, events, deadLetters });
      const settling = books.violations.every((v) => /^\[(sku-surplus|redis-stock|lost-event|task-pending|undersold)\]/.test(v));
      if (!books.violations.length || !settling || Date.now() > end) return books;
      await sleep(1_000);
    }
  }

  /** SIGKILL every process of `p`'s group (npm, supervisor, workers). */
  async kill(p: Proc): Promise<void> {
    try {
      process.kill(-p.child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([p.exited, sleep(5_000)]);
  }

  /** SIGTERM to npm (which execs the supervisor); the group is killed if it outlives `graceMs`. */
  async stop(p: Proc, graceMs = 20_000): Promise<void> {
    if (!p.done) {
      try {
        process.kill(p.child.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
      await Promise.race([p.exited, sleep(graceMs)]);
    }
    try {
      process.kill(-p.child.pid!, 'SIGKILL');
    } catch {
      /* the group is gone: good */
    }
  }

  tail(p: Proc, n = 10): string {
    try {
      return fs
        .readFileSync(p.log, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('npm warn') && !l.startsWith('>'))
        .slice(-n)
        .join(' | ')
        .slice(-1500);
    } catch {
      return '';
    }
  }

  /** Lines of every process log that match `re` (e.g. supervisor restarts). */
  grepLogs(re: RegExp): string[] {
    return this.procs.flatMap((p) => {
      try {
        return fs
          .readFileSync(p.log, 'utf8')
          .split('\n')
          .filter((l) => re.test(l));
      } catch {
        return [];
      }
    });
  }

  async close(keep = false): Promise<void> {
    // The books are read already; a graceful stop is not what this suite tests.
    for (const p of this.procs) await this.kill(p);
    await this.caller?.close();
    for (const p of Object.values(this.proxies)) await p!.close();
    await this.env.cleanup();
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Workers of `npm start` that serve /metrics, on METRICS_PORT + 0 … 3. */
const WORKER_PORTS = 4;

/** The first of `n` consecutive local ports that are free right now. */
async function freePorts(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports for the workers' /metrics`);
}

function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((r) => r.length >= 2 && r[0] !== 'name');
}

export type Reply = { code: string; info?: string; data?: any };

/**
 * A caller that survives broker outages, on the package's client (infra/client): publishes with
 * confirms and retries until confirmed (at-least-once, as a real upstream would), does
 * request/reply with a timeout, and keeps a durable observer queue on `activity.events` that is
 * drained at the end. A lost connection is replaced by a new client (on a cluster, to the next node).
 */
export class Caller {
  private client?: Client;
  private connecting?: Promise<Client>;
  private readonly events: SeenEvent[] = [];
  private readonly dead: Array<{ messageId?: string; headers: Record<string, any> }> = [];
  private closed = false;

  /** Which of `urls` the next connection tries (a cluster: the next node after a failure). */
  private next = 0;

  private constructor(readonly urls: readonly string[]) {}

  static async connect(urls: string | readonly string[]): Promise<Caller> {
    const c = new Caller(typeof urls === 'string' ? [urls] : urls);
    // The observer queue: durable, so events published during a broker restart are still counted;
    // on a cluster a quorum queue, so that it outlives the node it was declared on.
    const ch = await (await c.ensure()).connection.createChannel();
    await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
    await ch.assertQueue(OBSERVER_QUEUE, { durable: true, ...(c.urls.length > 1 ? { arguments: { 'x-queue-type': 'quorum' } } : {}) });
    await ch.bindQueue(OBSERVER_QUEUE, EVENTS_EXCHANGE, '#');
    await ch.close();
    return c;
  }

  private ensure(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    return (this.connecting ??= (async () => {
      try {
        const url = this.urls[this.next % this.urls.length]!;
        let client: Client;
        try {
          client = await connect({ url, validate: false, name: 'activity-quota:faults-caller' });
        } catch (err) {
          this.next++;
          throw err;
        }
        client.connection.on('close', () => this.drop(client));
        return (this.client = client);
      } finally {
        this.connecting = undefined;
      }
    })());
  }

  /** Forgets `client` (closing it): the next call connects again, on a cluster to the next node. */
  private drop(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.next++;
    void client.close().catch(() => undefined);
  }

  /** Publishes until the broker confirms (reconnecting as needed); gives up after `timeoutMs`. */
  async publish(queue: string, payload: unknown, o: { messageId?: string; timeoutMs?: number } = {}): Promise<string> {
    const messageId = o.messageId ?? randomUUID();
    const end = Date.now() + (o.timeoutMs ?? 300_000);
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        const client = await this.ensure();
        // A confirm that never comes (a silent path) is a failed attempt too.
        await within(client.publish(queue, payload, { messageId, mandatory: false }), 10_000, 'confirm timeout').catch((err: unknown) => {
          if (!(err instanceof Deadline)) this.drop(client);
          throw err;
        });
        return messageId;
      } catch (err) {
        if (this.closed || Date.now() > end) throw err;
        await sleep(delay);
      }
    }
  }

  /**
   * One request/reply attempt: resolves with the reply or rejects after `timeoutMs`; a publish that
   * fails is retried within that time. With `onLate`, a reply that comes after the timeout is
   * handed to it (the client keeps waiting for it, up to LATE_REPLY_MS). Every publish of the
   * attempt carries one message id: an unconfirmed publish may still have been enqueued (its node
   * died before confirming), and its retry must then be the same request, not a second one.
   */
  async rpc(queue: string, payload: unknown, timeoutMs = 10_000, onLate?: (r: Reply) => void, requestId?: string): Promise<Reply> {
    const end = Date.now() + timeoutMs;
    const messageId = requestId ?? randomUUID();
    const noReply = () => new Error(`no reply within ${timeoutMs} ms`);
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      const client = await within(this.ensure(), Math.max(0, end - Date.now()), 'not connected').catch(() => undefined);
      if (client) {
        const call = client.request(queue, payload, { messageId, mandatory: false, timeoutMs: onLate ? LATE_REPLY_MS : Math.max(1, end - Date.now()) });
        try {
          return asReply((await within(call, Math.max(0, end - Date.now()), 'no reply')).body);
        } catch (err) {
          if (err instanceof Deadline || err instanceof TimeoutError) {
            if (onLate)
              call.then(
                (r) => onLate(asReply(r.body)),
                () => undefined,
              );
            throw noReply();
          }
          // Sent, and the connection went: as before, nothing comes until the timeout.
          if (err instanceof ReplyLostError) {
            await sleep(end - Date.now());
            throw noReply();
          }
          this.drop(client); // the publish failed: try again on a fresh connection
        }
      }
      if (this.closed || Date.now() >= end) throw noReply();
      await sleep(Math.min(delay, end - Date.now()));
    }
  }

  /** Reads what the observer queue holds now into the event list; returns every event seen so far. */
  async drainEvents(): Promise<SeenEvent[]> {
    await this.drain(OBSERVER_QUEUE, (m) => {
      let body: any;
      try {
        body = JSON.parse(m.content.toString('utf8'));
      } catch {
        body = undefined;
      }
      this.events.push({ key: m.fields.routingKey, messageId: String(m.properties.messageId ?? body?.id ?? ''), data: body?.data ?? {} });
    });
    return this.events;
  }

  async drainDeadLetters(): Promise<Array<{ messageId?: string; headers: Record<string, any> }>> {
    await this.drain(DEAD_LETTER_QUEUE, (m) => this.dead.push({ messageId: m.properties.messageId ? String(m.properties.messageId) : undefined, headers: m.properties.headers ?? {} }));
    return this.dead;
  }

  private async drain(queue: string, take: (m: GetMessage) => void): Promise<void> {
    const ch = await (await this.ensure()).connection.createChannel();
    ch.on('error', () => undefined);
    try {
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) return;
        take(m);
      }
    } catch (err) {
      if (!/NOT_FOUND/.test(String((err as Error).message))) throw err;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.close().catch(() => undefined);
  }
}

/** How long a request with `onLate` keeps waiting for its reply after the caller gave up. */
const LATE_REPLY_MS = 600_000;

class Deadline extends Error {}

/** `p`, or a Deadline rejection after `ms` (`p` goes on; its rejection is observed). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Deadline(what)), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function asReply(body: unknown): Reply {
  return body && typeof body === 'object' && typeof (body as Reply).code === 'string' ? (body as Reply) : { code: 'UNPARSABLE' };
}
