import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { alive, readPid, sh, until, type Layout } from './layout';

/**
 * The world's RabbitMQ: three nodes of Debian's rabbitmq-server run as their own Erlang nodes
 * (`<name>1@localhost` …) with their own ports, config, data, logs, HOME and Erlang cookie. The
 * machine's default node (`rabbit@localhost`, 5672) is never addressed: every CLI call names one
 * of our nodes and runs with our HOME, whose cookie the default node does not share.
 */
const BIN = '/usr/lib/rabbitmq/bin';
type Node = Layout['rabbit'][number];

const base = (l: Layout) => path.join(l.dir, 'rabbitmq');
const short = (n: Node) => n.node.split('@')[0]!;
const pidFile = (l: Layout, n: Node) => path.join(base(l), `${short(n)}.pid`);
export const rabbitPid = (l: Layout, n: Node) => readPid(pidFile(l, n));

function nodeEnv(l: Layout, n: Node): NodeJS.ProcessEnv {
  const b = base(l);
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: path.join(b, 'home'),
    // Our own (empty) env file: /etc/rabbitmq/rabbitmq-env.conf names the default node.
    RABBITMQ_CONF_ENV_FILE: path.join(b, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: n.node,
    RABBITMQ_NODE_PORT: String(n.port),
    RABBITMQ_DIST_PORT: String(n.distPort),
    RABBITMQ_CONFIG_FILE: path.join(b, `${short(n)}.conf`),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(b, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(b, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(b, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(b, 'log'),
    RABBITMQ_PID_FILE: pidFile(l, n),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    // Run the VM in place of the script, so that the pid file is the broker's own pid.
    RUNNING_UNDER_SYSTEMD: 'true',
  };
}

/** `rabbitmqctl` (or another CLI: `rabbitmq-queues`, `rabbitmq-diagnostics`) against one of the world's nodes. */
export async function rabbitCli(l: Layout, n: Node, args: string[], cli = 'rabbitmqctl', timeoutMs = 60_000): Promise<string> {
  if (!n.node.startsWith(l.name) || n.node.startsWith('rabbit@')) throw new Error(`refusing to address node ${n.node}`);
  return (await sh(path.join(BIN, cli), ['-n', n.node, ...args], { env: nodeEnv(l, n), timeoutMs })).stdout;
}

function writeFiles(l: Layout): void {
  const b = base(l);
  for (const d of ['home', 'mnesia', 'log']) fs.mkdirSync(path.join(b, d), { recursive: true });
  const cookie = path.join(b, 'home', '.erlang.cookie');
  if (!fs.existsSync(cookie)) fs.writeFileSync(cookie, randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
  fs.writeFileSync(path.join(b, 'rabbitmq-env.conf'), '');
  fs.writeFileSync(path.join(b, 'enabled_plugins'), '[].\n');
  for (const n of l.rabbit) {
    fs.writeFileSync(path.join(b, `${short(n)}.conf`), [`listeners.tcp.1 = 127.0.0.1:${n.port}`, 'log.file.level = info', 'log.console = false', ''].join('\n'));
  }
}

/**
 * Starts one node unless it runs; its data folder brings it back into the cluster. Returns once it
 * accepts AMQP. A node that fails to boot is killed and started once more; if that fails too, the
 * error carries the end of its log, so that the cause shows where the failure is reported.
 */
export async function startRabbitNode(l: Layout, n: Node): Promise<boolean> {
  if (alive(rabbitPid(l, n))) return false;
  writeFiles(l);
  for (let attempt = 1; ; attempt++) {
    try {
      await bootNode(l, n);
      return true;
    } catch (err) {
      const pid = rabbitPid(l, n);
      if (alive(pid)) process.kill(pid!, 'SIGKILL');
      await until(`${n.node} gone`, 10_000, async () => (alive(pid) ? undefined : true), 200);
      if (attempt === 2) throw new Error(`${(err as Error).message}\n--- end of ${n.node}'s log:\n${logTail(l, n)}`);
    }
  }
}

async function bootNode(l: Layout, n: Node): Promise<void> {
  fs.rmSync(pidFile(l, n), { force: true });
  const out = fs.openSync(path.join(base(l), 'log', `${short(n)}.stdout`), 'a');
  const child = spawn(path.join(BIN, 'rabbitmq-server'), [], { env: nodeEnv(l, n), detached: true, stdio: ['ignore', out, out] });
  child.unref();
  fs.closeSync(out);
  await rabbitCli(l, n, ['wait', '--timeout', '110', pidFile(l, n)], 'rabbitmqctl', 120_000);
}

function logTail(l: Layout, n: Node, lines = 30): string {
  const files = [`${n.node}.log`, `${short(n)}.stdout`].map((f) => path.join(base(l), 'log', f));
  return files
    .filter((f) => fs.existsSync(f))
    .map((f) => `${path.basename(f)}:\n${fs.readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`)
    .join('\n');
}

async function members(l: Layout, n: Node): Promise<{ running: string[]; disk: string[] }> {
  const s = JSON.parse(await rabbitCli(l, n, ['cluster_status', '--formatter', 'json'])) as { running_nodes?: string[]; disk_nodes?: string[] };
  return { running: s.running_nodes ?? [], disk: s.disk_nodes ?? [] };
}

/** Starts the three nodes at once, then joins the 2nd and 3rd to the 1st (first time only); waits until all three run together. */
export async function upRabbit(l: Layout, say: (s: string) => void): Promise<void> {
  const started = await Promise.all(l.rabbit.map((n) => startRabbitNode(l, n)));
  if (started.some(Boolean)) say(`rabbitmq: started ${started.filter(Boolean).length} node(s)`);
  const [first, ...rest] = l.rabbit;
  for (const n of rest) {
    if ((await members(l, first!)).disk.includes(n.node)) continue;
    say(`rabbitmq: joining ${n.node} to ${first!.node}`);
    await rabbitCli(l, n, ['stop_app']);
    await rabbitCli(l, n, ['join_cluster', first!.node]);
    await rabbitCli(l, n, ['start_app']);
  }
  await until('rabbitmq: three nodes running in one cluster', 60_000, async () => ((await members(l, first!)).running.length === 3 ? true : undefined), 1_000);
}

export async function rabbitStatus(l: Layout): Promise<Array<{ node: string; port: number; running: boolean; clustered: string[] }>> {
  return Promise.all(
    l.rabbit.map(async (n) => {
      const running = alive(rabbitPid(l, n));
      const clustered = running
        ? await members(l, n).then(
            (m) => m.running,
            () => [],
          )
        : [];
      return { node: n.node, port: n.port, running, clustered };
    }),
  );
}

export async function downRabbit(l: Layout): Promise<void> {
  await Promise.all(
    l.rabbit.map(async (n) => {
      const pid = rabbitPid(l, n);
      if (!alive(pid)) return;
      await rabbitCli(l, n, ['stop'], 'rabbitmqctl', 30_000).catch(() => undefined);
      await until(`${n.node} stopped`, 10_000, async () => (alive(pid) ? undefined : true), 200).catch(() => process.kill(pid!, 'SIGKILL'));
    }),
  );
}

/** kill -9 of one node's VM (a crash, nothing flushed). */
export function killRabbitNode(l: Layout, node: string): void {
  const n = l.rabbit.find((r) => r.node === node);
  const pid = n && rabbitPid(l, n);
  if (!n || !alive(pid)) throw new Error(`${node} is not a running node of this world`);
  process.kill(pid!, 'SIGKILL');
}

/** The node that leads a quorum queue's Raft group now. */
export async function quorumLeader(l: Layout, queue: string, vhost = '/'): Promise<string> {
  for (const n of l.rabbit) {
    if (!alive(rabbitPid(l, n))) continue;
    const rows = JSON.parse(await rabbitCli(l, n, ['list_queues', '-p', vhost, 'name', 'type', 'leader', '--formatter', 'json'])) as Array<{ name: string; type: string; leader?: string }>;
    const q = rows.find((r) => r.name === queue);
    if (!q) throw new Error(`no queue ${queue} in vhost ${vhost}`);
    if (q.type !== 'quorum' || !q.leader) throw new Error(`${queue} is a ${q.type} queue without a leader`);
    return q.leader;
  }
  throw new Error('no RabbitMQ node of the world runs');
}
