import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { createTestEnv, type TestEnv } from '../test/support/env';
import { execFileSync, spawn } from 'node:child_process';
import type { Service } from '../test/support/workers';
import {
  benchChildrenSource,
  cheapest,
  CLK_TCK,
  cpuClock,
  cpuRows,
  driverSource,
  MACHINE,
  machineSource,
  postgresSource,
  rabbitmqSource,
  redisSource,
  SOURCES,
  stealSource,
  STOLEN,
  treeOf,
  type CpuClock,
} from './cpu';
import { dbWorkMeter, scrapeStatements, type DbWorkMeter, type WorkMark } from './db-work';
import { connectDriver, type Driver } from './driver';
import { writeReport, type DbWorkRow, type Results } from './report';
import { checkPerf, profiler } from './profile';
import { brokerPubSubCeiling, brokerRpcCeiling, startEcho } from './scenarios/ceiling-broker';
import { BASE, dbCeiling, VARIANTS, type DbLevel, type Variant } from './scenarios/ceiling-db';
import { statementsOf, USERS_PER_CLIENT } from './scenarios/ceiling-sql';
import { pacedPartake, partakeScenario, partakeUser, PARTAKE_QUEUE, USED_QUEUE, USERS_PER_CALLER } from './scenarios/partake';
import { outboxScenario, rechargeScenario, RECHARGE_QUEUE, tapEvents, type EventTap } from './scenarios/recharge';
import { floodScenario } from './scenarios/flood';
import { SOAK_PARTAKE_USERS, SOAK_RETENTION_SECONDS, soakCatalog, soakMarkdown, soakScenario, soakUser } from './scenarios/soak';
import { bounded, log, now, rssSampler, sleep, writeBetween } from './support';
import { ACTIVITY_ID, catalogFor, loadCatalogFile, machine, openPools, preloadAccounts, preloadCeilingAccounts, removeCeilingRows, type Pools } from './world';

const USAGE = `usage: npm run bench -- [--quick] [--only partake|recharge|outbox|ceilings[,…]] [--n N] [--concurrency 1,16,64]
                        [--duration SECONDS] [--users U] [--env KEY=VALUE …] [--service-dir DIR] [--variants] [--profile] [--docs|--no-docs] [--keep]
       npm run bench -- --cluster [--reuse] [--n N] [--duration SECONDS] [--no-docs]   (bench/cluster.ts)
       npm run bench -- --soak MINUTES | --flood N   [--env KEY=VALUE …] [--service-dir DIR] [--keep]
       npm run bench -- --summarize RESULTS.json …   (issue 16's figures over several runs into docs/BENCHMARKS.md)
       npm run bench -- --compare NAME A.json … -- B.json …   (an A/B of runs into docs/BENCHMARKS.md, between its bench:compare:NAME markers)
  --quick        small N and short runs (development, CI smoke)
  --only         run only these scenarios (the pipeline starts only for partake / recharge / outbox)
  --n            recharges to publish (default 20000; quick 1000)
  --concurrency  concurrent callers / pgbench clients (default 1,16,64; quick 1,8)
  --duration     seconds per concurrency level (default 8; quick 3)
  --users        distinct users of the recharge run (default 5000)
  --env K=V      extra environment for npm start and the echo worker (e.g. PREFETCH=64)
  --service-dir  run \`npm start\` in another checkout (compare a branch before / after a change)
  --variants     also run the database ceiling's hot-path variants (unnamed statements, CTE partake, grouped recharge)
  --profile      also sample PostgreSQL with Linux perf during each pipeline span and each DB ceiling's
                 steady span: its CPU per message by where it goes (executing, committing, reading the
                 client…; bench/profile.ts). Needs perf and root
  --docs         write docs/benchmarks.{json,svg} and the table in docs/BENCHMARKS.md (default for a full run)
  --keep         keep the bench world (databases, vhost, Redis db) for inspection
  --soak         only the soak: recharge, partake, use and expiry mixed at about half of peak for MINUTES,
                 RSS per worker, p99, outbox lag and table rows every minute (bench/scenarios/soak.ts)
  --flood        only the catalog-cache flood: N partakes with random activity ids and N recharges with
                 random SKUs, twice, with the workers' RSS before and after (bench/scenarios/flood.ts)`;

/** The name's end of a DB ceiling's span from pgbench's first progress report on. */
const STEADY = ", after pgbench's first second";
/** The name's end of a DB ceiling's span run beside the broker ceiling. */
const BESIDE = ' beside the broker ceiling';

const SCENARIOS = ['partake', 'recharge', 'outbox', 'ceilings'] as const;
type Scenario = (typeof SCENARIOS)[number];

type Options = {
  quick: boolean;
  only: Set<Scenario>;
  n: number;
  concurrency: number[];
  duration: number;
  users: number;
  env: Record<string, string>;
  docs: boolean;
  keep: boolean;
  variants: boolean;
  profile: boolean;
  serviceDir: string;
  outboxRate: number;
  outboxSeconds: number;
  rechargeTimeout: number;
  soak?: number;
  flood?: number;
};

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const known = new Set([
    '--quick',
    '--only',
    '--n',
    '--concurrency',
    '--duration',
    '--users',
    '--env',
    '--service-dir',
    '--docs',
    '--no-docs',
    '--keep',
    '--variants',
    '--profile',
    '--soak',
    '--flood',
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!known.has(a)) fail(`unknown argument ${a}`);
    if (!['--quick', '--docs', '--no-docs', '--keep', '--variants', '--profile'].includes(a)) i++;
  }
  const quick = argv.includes('--quick');
  const only = new Set<Scenario>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--only') continue;
    for (const s of (argv[i + 1] ?? '').split(',').filter(Boolean)) {
      if (!(SCENARIOS as readonly string[]).includes(s)) fail(`--only: ${s} is not one of ${SCENARIOS.join(', ')}`);
      only.add(s as Scenario);
    }
  }
  if (only.size === 0) for (const s of SCENARIOS) only.add(s);
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) fail(`${name}: expected a number from ${min} to ${max}, got ${raw}`);
    return v;
  };
  const concurrency = (get('--concurrency') ?? (quick ? '1,8' : '1,16,64')).split(',').map(Number);
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1 || c > 512)) fail('--concurrency: whole numbers from 1 to 512, comma separated');
  const env: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--env') continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(argv[i + 1] ?? '');
    if (!m) fail(`--env: expected KEY=VALUE, got ${argv[i + 1]}`);
    env[m![1]!] = m![2]!;
  }
  const full = !quick && only.size === SCENARIOS.length && !get('--n') && !get('--concurrency') && !get('--duration') && !get('--service-dir') && !argv.includes('--profile');
  return {
    quick,
    only,
    n: Math.round(num('--n', quick ? 1000 : 20_000, 1, 1_000_000)),
    concurrency,
    duration: num('--duration', quick ? 3 : 8, 1, 600),
    users: Math.round(num('--users', 5000, 1, 1_000_000)),
    env,
    docs: argv.includes('--docs') || (full && !argv.includes('--no-docs') && Object.keys(env).length === 0),
    keep: argv.includes('--keep'),
    variants: argv.includes('--variants'),
    profile: argv.includes('--profile'),
    serviceDir: path.resolve(get('--service-dir') ?? process.cwd()),
    outboxRate: quick ? 50 : 100,
    outboxSeconds: quick ? 3 : 5,
    rechargeTimeout: quick ? 60 : 180,
    soak: get('--soak') === undefined ? undefined : num('--soak', 20, 1, 24 * 60),
    flood: get('--flood') === undefined ? undefined : Math.round(num('--flood', 40_000, 1, 1_000_000)),
  };
}

/** The commit the benched service is at (`git rev-parse HEAD` in its directory), if it is a git checkout. */
/** The benched checkout's commit, with `+changes` when its tracked files but docs/ (which `--docs` writes) differ from it. */
function serviceCommit(dir: string): string | undefined {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return `${git('rev-parse', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)docs') ? '+changes' : ''}`;
  } catch {
    return undefined;
  }
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const undo: Array<() => Promise<void>> = [];

async function unwind(): Promise<void> {
  while (undo.length) await undo.pop()!().catch((err) => log(`cleanup: ${err?.message ?? err}`));
}

async function main(): Promise<void> {
  // The cluster world's throughput (1 and 2 instances per worker) has a runner of its own, which exits.
  if (process.argv.includes('--cluster')) return void (await import('./cluster'));
  if (process.argv[2] === '--summarize') {
    const files = process.argv.slice(3);
    if (!files.length) fail('--summarize: name the results files (bench/out/results-*.json)');
    return void process.stdout.write(`${(await import('./summary')).writeSummary(files, root)}\n`);
  }
  if (process.argv[2] === '--compare') {
    const [name, ...files] = process.argv.slice(3);
    const cut = files.indexOf('--');
    if (!name || cut < 1 || cut === files.length - 1) fail("--compare NAME A.json … -- B.json …: name the comparison and both sides' results files");
    return void process.stdout.write(`${(await import('./summary')).writeComparison(name!, files.slice(0, cut), files.slice(cut + 1), root)}\n`);
  }
  const o = parseArgs(process.argv.slice(2));
  const t0 = now();
  const runId = randomBytes(3).toString('hex');
  const command = `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  log(`${command}: scenarios ${[...o.only].join(', ')}; N=${o.n} C=${o.concurrency.join(',')} ${o.duration}s each`);

  // The soak runs with a short retention (2 minutes; `--env RETENTION_SECONDS=…` overrides) so that the outbox is seen staying bounded.
  const world: TestEnv = await createTestEnv({ extra: { ...(o.soak !== undefined ? { RETENTION_SECONDS: String(SOAK_RETENTION_SECONDS) } : {}), ...o.env } });
  undo.push(async () => {
    if (o.keep) return log(`kept the bench world ${world.id} (databases ${world.id}*, vhost ${world.id}, ${world.env.REDIS_URL})`);
    await world.cleanup();
    // The world's catalog file and pgbench scripts and logs go with it.
    fs.rmSync(path.join(root, 'bench', 'out', `catalog-${world.id}.json`), { force: true });
    fs.rmSync(path.join(root, 'bench', 'out', `pgbench-${world.id}`), { recursive: true, force: true });
  });
  log(`world ${world.id}: databases ${world.id}, ${world.id}_01.._${String(world.config.shardUrls.length).padStart(2, '0')}, vhost ${world.id}, ${world.env.REDIS_URL}`);
  const pools = openPools(world.config);
  undo.push(() => pools.close());
  if (o.soak !== undefined || o.flood !== undefined) return lifecycleBench(o, world, pools, runId);
  const results: Results = {
    meta: { date: new Date().toISOString(), command, options: { ...o, only: [...o.only] }, machine: await machine(pools), commit: serviceCommit(o.serviceDir) },
  };
  // Superuser or pg_read_all_settings only; without it the postmaster is found by scanning /proc.
  const dataDirectory = (await pools.global.query('SHOW data_directory').catch(() => undefined))?.rows[0]?.data_directory as string | undefined;
  if (o.profile) checkPerf();
  const recorder = o.profile ? profiler(path.join(root, 'bench', 'out', `perf-${world.id}`)) : undefined;
  // A pipeline span, and a DB ceiling's span from pgbench's first second on (its whole-run span is kept only when that never comes).
  const clock = serviceClock(world, dataDirectory, (name, kind) => (kind === 'pipeline' || (kind.startsWith('db ceiling') && name.endsWith(STEADY)) ? recorder?.start(name) : undefined));
  const meter = await dbWorkMeter(pools.shards, dataDirectory);
  results.dbWork = [];
  await idle(clock, 2);

  const pipeline = o.only.has('partake') || o.only.has('recharge') || o.only.has('outbox');
  if (pipeline) await loadCatalogFile(path.join(root, 'bench', 'out', `catalog-${world.id}.json`), catalogFor(o.n), world.env);

  if (o.only.has('ceilings')) results.ceilings = await ceilings(o, world, pools, clock, meter, results.dbWork);
  if (pipeline) await runPipeline(o, world, pools, runId, results, clock, meter);
  const perMessage = cpuRows(clock.spans);
  results.cpu = { clockTicks: CLK_TCK, spans: clock.spans, perMessage, cheapest: { partake: cheapest(perMessage, 'partake'), recharge: cheapest(perMessage, 'recharge') } };
  if (recorder) results.postgresProfiles = await recorder.read();

  results.meta.loadAfter = os.loadavg().map((v) => Number(v.toFixed(2)));
  results.meta.seconds = Math.round((now() - t0) / 1000);
  await unwind();
  const files = writeReport(results, root, o.docs);
  process.stdout.write(`\n${(await import('./report')).markdown(results)}\n\n`);
  log(`wrote ${files.map((f) => path.relative(root, f)).join(', ')} in ${results.meta.seconds} s`);
}

/**
 * The CPU clock of the run: the backing services (found in /proc), the bench itself and its exited
 * children (pgbench), and the machine as a whole (to see what else ran).
 */
function serviceClock(world: TestEnv, dataDirectory: string | undefined, onStart?: Parameters<typeof cpuClock>[0]): CpuClock {
  const clock = cpuClock(onStart);
  clock.watch(SOURCES.postgres, postgresSource(dataDirectory));
  clock.watch(SOURCES.rabbitmq, rabbitmqSource());
  clock.watch(SOURCES.redis, redisSource(new URL(world.config.redisUrl).port || '6379'));
  clock.watch(SOURCES.driver, driverSource);
  clock.watch(SOURCES.children, benchChildrenSource);
  clock.watch(MACHINE, machineSource);
  clock.watch(STOLEN, stealSource);
  return clock;
}

/**
 * A span without messages: what the services and the machine use in the background (before the
 * run), or what the idle pipeline's timers cost (relay polls, completion marks, health checks),
 * which every message of a slow run carries a larger share of.
 */
async function idle(clock: CpuClock, seconds: number, name = 'before the run'): Promise<void> {
  const span = clock.start(name, 'idle', 'idle');
  await sleep(seconds * 1000);
  span.end(0);
}

/** PostgreSQL CPU per message of a CPU span (ms). */
const postgresMs = (span: { cpu: Record<string, number>; messages: number }) =>
  span.messages && span.cpu[SOURCES.postgres] !== undefined ? Number(((1000 * span.cpu[SOURCES.postgres]!) / span.messages).toFixed(3)) : undefined;

async function ceilings(o: Options, world: TestEnv, pools: Pools, clock: CpuClock, meter: DbWorkMeter, dbWork: DbWorkRow[]): Promise<NonNullable<Results['ceilings']>> {
  const maxClients = Math.max(...o.concurrency);
  log('ceilings: preloading accounts for pgbench');
  await preloadCeilingAccounts(pools, world.config, maxClients * USERS_PER_CLIENT);
  const dir = path.join(root, 'bench', 'out', `pgbench-${world.id}`);
  // A CPU span per level (PostgreSQL and pgbench CPU per transaction), from pgbench's first progress
  // report on (connections made); over the whole run if that report never came.
  // and the database work (db-work.ts) over the same stretch.
  // Beside the broker ceiling (`besideBroker`), only the CPU: its WAL and rows are the same script's.
  const level =
    (v: Variant, besideBroker = false): DbLevel =>
    (c) => {
      const kind = besideBroker ? 'db ceiling beside broker' : 'db ceiling';
      const name = `db ceiling ${v.name} C=${c}${besideBroker ? BESIDE : ''}`;
      const whole = clock.start(name, kind, v.kind, c);
      // The WAL marks (a pg_current_wal_insert_lsn each) only where the WAL is read.
      const first = besideBroker ? undefined : meter.mark();
      let steady: ReturnType<CpuClock['start']> | undefined;
      let warmMark: Promise<WorkMark> | undefined;
      return {
        warm: () => {
          steady = clock.start(`${name}${STEADY}`, kind, v.kind, c);
          if (!besideBroker) warmMark = meter.mark();
        },
        end: async (p) => {
          const warm = steady && p.warmTransactions;
          const span = warm ? steady!.end(p.warmTransactions! * v.perTransaction) : whole.end(p.transactions * v.perTransaction);
          if (besideBroker) return;
          const work = await meter.since(await (warm ? warmMark! : first!), { messages: span.messages, statementsPerMessage: statementsOf(v.script(0)) });
          dbWork.push({ side: 'db ceiling', scenario: v.kind, concurrency: c, postgresMs: postgresMs(span), ...work });
        },
      };
    };
  const dbPartake = await dbCeiling(world.config, BASE.partake, o.concurrency, o.duration, dir, level(BASE.partake));
  const dbRecharge = await dbCeiling(world.config, BASE.recharge, o.concurrency, o.duration, dir, level(BASE.recharge));
  const variants = [];
  if (o.variants) {
    // Each variant point is paired with a run of the handlers' SQL just before it, so that both see
    // about the same machine load; the ratio is taken against that paired run.
    for (const v of VARIANTS) {
      const points = [];
      const paired = [];
      for (const c of o.concurrency) {
        paired.push(...(await dbCeiling(world.config, BASE[v.kind], [c], o.duration, dir)));
        points.push(...(await dbCeiling(world.config, v, [c], o.duration, dir)));
      }
      variants.push({ name: v.name, kind: v.kind, about: v.about, points, paired });
    }
  }
  await removeCeilingRows(pools, world.config);
  const echo = await startEcho(world.config.amqpUrl, o.env);
  const unwatch = clock.watch(SOURCES.echo, treeOf(echo.child.pid!));
  try {
    const rpcLevel = (c: number) => {
      const span = clock.start(`broker ceiling rpc C=${c}`, 'broker ceiling', 'rpc', c);
      return (p: { requests: number }) => void span.end(p.requests);
    };
    const brokerRpc = await brokerRpcCeiling(world.config.amqpUrl, o.concurrency, o.duration, rpcLevel);
    const span = clock.start('broker ceiling publish/consume', 'broker ceiling', 'publish/consume');
    const brokerPubSub = await brokerPubSubCeiling(world.config.amqpUrl, o.n, o.rechargeTimeout);
    span.end(brokerPubSub.arrived);
    // The DB ceiling again, each level beside the broker ceiling's rpc loop at the same C: the
    // pipeline's PostgreSQL always shares the machine with RabbitMQ and Node processes, and the same
    // statements cost PostgreSQL more CPU beside such a load (docs/BENCHMARKS.md, "Where
    // PostgreSQL's CPU goes"); this holds the ceiling under a load of that kind.
    const beside = async (v: Variant) => {
      const points = [];
      for (const c of o.concurrency) {
        const [db] = await Promise.all([dbCeiling(world.config, v, [c], o.duration, dir, level(v, true)), brokerRpcCeiling(world.config.amqpUrl, [c], o.duration + 2)]);
        points.push(...db);
      }
      return points;
    };
    const dbPartakeBesideBroker = await beside(BASE.partake);
    const dbRechargeBesideBroker = await beside(BASE.recharge);
    await removeCeilingRows(pools, world.config);
    return { dbPartake, dbRecharge, brokerRpc, brokerPubSub, variants, dbPartakeBesideBroker, dbRechargeBesideBroker };
  } finally {
    unwatch();
    await echo.stop();
  }
}

const INPUT_QUEUES = ['activity.recharge', 'activity.behavior', 'activity.partake', 'activity.account.query', 'activity.raffle-order.used', 'activity.sku.stock-zero', 'activity.task.replay'];

/** Until every input queue has a consumer (checkQueue on a missing queue closes the channel: a fresh one each round). */
async function waitReady(amqpUrl: string, service: Service, timeoutMs: number): Promise<void> {
  const conn = await amqplib.connect(amqpUrl);
  conn.on('error', () => undefined);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (service.child.exitCode !== null) throw new Error(`npm start exited ${service.child.exitCode}:\n${service.output().slice(-2000)}`);
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      let ready = true;
      for (const q of INPUT_QUEUES) {
        const r = await ch.checkQueue(q).catch(() => undefined);
        if (!r || r.consumerCount < 1) {
          ready = false;
          break;
        }
      }
      await ch.close().catch(() => undefined);
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`npm start not ready within ${timeoutMs / 1000} s:\n${service.output().slice(-2000)}`);
      await sleep(250);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** `npm start` in its own process group (so that SIGKILL can reach every worker if it must). */
function spawnNpm(args: string[], env: Record<string, string>, cwd: string): Service {
  const child = spawn('npm', args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => void (out = (out + d).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

async function stopService(service: Service): Promise<void> {
  const pid = service.child.pid!;
  if (service.child.exitCode !== null) return;
  service.child.kill('SIGTERM');
  const r = await bounded(25_000, service.exited, () => undefined);
  if (!r) {
    log('npm start did not stop within 25 s after SIGTERM; killing its process group');
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  } else if (r.code !== 0) log(`npm start exited with ${r.code ?? r.signal} after SIGTERM`);
}

/** Dead-lettered messages of `queue` (drained from activity.dead-letter): their `x-error` reasons. */
async function deadLetterReasons(d: Driver, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const m = await d.sub.get('activity.dead-letter', { noAck: true });
    if (!m) return out;
    const h = m.properties.headers ?? {};
    if (h['x-original-queue'] === queue || (Array.isArray(h['x-death']) && h['x-death'][0]?.queue === queue)) out.push(String(h['x-error'] ?? 'dead-lettered'));
  }
}

async function unavailable(d: Driver, queue: string, what: string): Promise<string> {
  const reasons = await deadLetterReasons(d, queue);
  if (reasons.length) return `${queue} dead-letters ${reasons[0]!.split(':')[0]} (${reasons[0]})`;
  return `${what}`;
}

async function runPipeline(o: Options, world: TestEnv, pools: Pools, runId: string, results: Results, clock: CpuClock, meter: DbWorkMeter): Promise<void> {
  const maxC = Math.max(...o.concurrency);
  if (o.only.has('partake')) {
    const users = Array.from({ length: maxC }, (_, c) => Array.from({ length: USERS_PER_CALLER }, (_, k) => partakeUser(c, k))).flat();
    log(`partake: ${users.length} accounts inserted with SQL`);
    await preloadAccounts(pools, world.config, users);
  }
  log('npm start');
  // The workers' /metrics (statements per database) on free ports: METRICS_PORT + each worker's index.
  const metricsBase = await freePorts(4);
  const metricsPorts = [0, 1, 2, 3].map((i) => metricsBase + i);
  const service = spawnNpm(['start'], { ...world.env, METRICS_PORT: String(metricsBase) }, o.serviceDir);
  undo.push(() => stopService(service));
  await waitReady(world.config.amqpUrl, service, 90_000);
  const rss = rssSampler(service.child.pid!);
  undo.push(async () => rss.stop());
  // npm start, the supervisor and every worker (a restarted worker's first life in its parent's cutime).
  const unwatch = clock.watch(SOURCES.workers, treeOf(service.child.pid!));
  undo.push(async () => unwatch());
  log('pipeline ready: every input queue has a consumer');
  await idle(clock, 2, 'pipeline idle');
  const d = await connectDriver(world.config.amqpUrl);
  undo.push(() => d.close());
  const tap: EventTap = await tapEvents(d);

  if (o.only.has('partake')) {
    rss.phase('partake');
    tap.phase('partake');
    const probe = await d.rpc(PARTAKE_QUEUE, { userId: partakeUser(0, 0), activityId: ACTIVITY_ID }, 8_000).catch(() => undefined);
    if (!probe) {
      results.partake = { available: false, reason: await unavailable(d, PARTAKE_QUEUE, 'no reply to a partake within 8 s') };
    } else if (probe.body?.code !== '0000') {
      results.partake = { available: false, reason: `probe partake replied ${JSON.stringify(probe.body)}` };
    } else {
      await d.publish('', USED_QUEUE, { userId: partakeUser(0, 0), orderId: String(probe.body.data.orderId) });
      const level = (c: number) => {
        const span = clock.start(`partake C=${c}`, 'pipeline', 'partake', c);
        const work = pipelineWork(meter, metricsPorts);
        return async (p: { requests: number }) => {
          const s = span.end(p.requests);
          results.dbWork!.push({ side: 'pipeline', scenario: 'partake', concurrency: c, postgresMs: postgresMs(s), ...(await work(p.requests)) });
        };
      };
      results.partake = { available: true, result: await partakeScenario(d, o.concurrency, o.duration, level) };
      const peak = Math.max(...results.partake.result.map((p) => p.throughput));
      if (peak > 0) {
        const users = Array.from({ length: maxC }, (_, c) => Array.from({ length: USERS_PER_CALLER }, (_, k) => partakeUser(c, k))).flat();
        const span = clock.start('partake open loop', 'pipeline', 'partake open loop');
        results.partakeHalfPeak = await pacedPartake(d, users, peak / 2, o.duration);
        span.end(results.partakeHalfPeak.sent);
      }
    }
    if (!results.partake.available) log(`partake: not available: ${results.partake.reason}`);
  }

  let eventsFlow = false;
  if (o.only.has('recharge') || o.only.has('outbox')) {
    rss.phase('recharge');
    tap.phase('probe');
    const prefix = `bench-${runId}-probe-`;
    await d.publish('', RECHARGE_QUEUE, { userId: 'bench-probe', sku: 9011, outBusinessNo: `${prefix}0` });
    const outcome = await bounded(
      10_000,
      (async () => {
        for (;;) {
          if (tap.outcomes(prefix).completed + tap.outcomes(prefix).rejected > 0) return 'event';
          const reasons = await deadLetterReasons(d, RECHARGE_QUEUE);
          if (reasons.length) return `${RECHARGE_QUEUE} dead-letters ${reasons[0]!.split(':')[0]} (${reasons[0]})`;
          await sleep(200);
        }
      })(),
      () => 'timeout',
    );
    eventsFlow = outcome === 'event';
    let rechargeOk = eventsFlow;
    let reason = outcome;
    if (outcome === 'timeout') {
      const { rows } = await pools.shards[0]!.query('SELECT 1').then(async () => {
        let n = 0;
        for (const p of pools.shards) n += (await p.query(`SELECT count(*)::int AS n FROM task WHERE message->'data'->>'outBusinessNo' = $1`, [`${prefix}0`])).rows[0].n;
        return { rows: [{ n }] };
      });
      rechargeOk = rows[0]!.n > 0;
      reason = rechargeOk ? 'the recharge committed but no event arrived within 10 s (outbox relay not publishing?)' : 'no outcome of a recharge within 10 s';
    }
    if (o.only.has('recharge')) {
      if (rechargeOk) {
        const span = clock.start('recharge', 'pipeline', 'recharge');
        const work = pipelineWork(meter, metricsPorts);
        const result = await rechargeScenario(d, tap, pools, o.n, o.users, o.rechargeTimeout, runId, eventsFlow);
        const s = span.end(eventsFlow ? result.completed + result.rejected : result.committed);
        results.dbWork!.push({ side: 'pipeline', scenario: 'recharge', postgresMs: postgresMs(s), ...(await work(s.messages)) });
        results.recharge = { available: true, result };
      } else results.recharge = { available: false, reason };
      if (!results.recharge.available) log(`recharge: not available: ${reason}`);
    }
    if (o.only.has('outbox')) {
      if (!eventsFlow) results.outbox = { available: false, reason };
      else {
        rss.phase('outbox');
        const span = clock.start('outbox', 'pipeline', 'outbox');
        const ob = await outboxScenario(d, tap, o.outboxRate, o.outboxSeconds, runId);
        span.end(ob.sent);
        const { summarize } = await import('./support');
        const underLoad: Record<string, ReturnType<typeof summarize>> = {};
        for (const ph of ['partake', 'recharge']) {
          const v = tap.delays(ph);
          if (v.length) underLoad[`${ph} run`] = summarize(v);
        }
        results.outbox = { available: true, result: { ...ob, underLoad } };
      }
      if (!results.outbox.available) log(`outbox: not available: ${results.outbox.reason}`);
    }
  }
  rss.stop();
  results.rss = { peaks: rss.peaks(), phases: rss.phasePeaks(), cpu: rss.phaseCpu() };
}

/** Database work of the pipeline from now until the returned function is called with the span's messages. */
function pipelineWork(meter: DbWorkMeter, metricsPorts: readonly number[]) {
  const mark = meter.mark();
  const statements = scrapeStatements(metricsPorts);
  return async (messages: number) => {
    const [a, s0] = await Promise.all([mark, statements]);
    let s1: number | undefined;
    const work = await meter.since(a, { messages, statementsAfterSettle: async () => (s1 = await scrapeStatements(metricsPorts)) });
    return { ...work, ...(s0 !== undefined && s1 !== undefined && messages ? { statements: Number(((s1 - s0) / messages).toFixed(2)) } : {}) };
  };
}

/** `n` consecutive free TCP ports on 127.0.0.1 (the first of them). */
async function freePorts(n: number): Promise<number> {
  const net = await import('node:net');
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net
        .createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
}

const SOAK_BEGIN = '<!-- bench-soak:begin (written by npm run bench -- --soak MINUTES --docs) -->';
const SOAK_END = '<!-- bench-soak:end -->';

/** `--soak` / `--flood`: `npm start` under a long mixed load, or a flood of unknown ids; figures printed and kept in bench/out/. */
async function lifecycleBench(o: Options, world: TestEnv, pools: Pools, runId: string): Promise<void> {
  await loadCatalogFile(path.join(root, 'bench', 'out', `catalog-${world.id}.json`), soakCatalog(), world.env);
  await preloadAccounts(
    pools,
    world.config,
    Array.from({ length: SOAK_PARTAKE_USERS }, (_, i) => soakUser(i)),
  );
  const service = spawnNpm(['start'], world.env, o.serviceDir);
  undo.push(() => stopService(service));
  await waitReady(world.config.amqpUrl, service, 90_000);
  const d = await connectDriver(world.config.amqpUrl);
  undo.push(() => d.close());
  const kind = o.soak !== undefined ? 'soak' : 'flood';
  const result = o.soak !== undefined ? await soakScenario(d, pools, world.config.shardTableCount, service.child.pid!, o.soak, runId) : await floodScenario(d, service.child.pid!, o.flood!, runId);
  await unwind();
  const file = path.join(root, 'bench', 'out', `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ command: process.argv.slice(2), serviceDir: o.serviceDir, result }, null, 2));
  const figures = 'perMinute' in result ? soakMarkdown(result) : result.rss.map((r) => `- ${r.at}: ${JSON.stringify(r.rss)}`).join('\n');
  process.stdout.write(`\n${figures}\n\n`);
  log(`wrote ${path.relative(root, file)}`);
  // --docs (only when given: a soak is never a default full run): the soak's figures between its
  // markers in docs/BENCHMARKS.md (generated, never edited by hand).
  if (kind === 'soak' && process.argv.includes('--docs')) {
    const stamp = `Run ${new Date().toISOString().slice(0, 16)}Z (\`npm run bench -- ${process.argv.slice(2).join(' ')}\`), load average at the end ${os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')}.`;
    if (writeBetween(path.join(root, 'docs', 'BENCHMARKS.md'), SOAK_BEGIN, SOAK_END, `${stamp}\n\n${figures}`)) log('wrote the soak figures into docs/BENCHMARKS.md');
  }
}

process.on('SIGINT', () => {
  log('interrupted: stopping the pipeline and removing the bench world');
  void unwind().finally(() => process.exit(130));
});

main().catch(async (err) => {
  log(`failed: ${err?.stack ?? err}`);
  await unwind();
  process.exit(1);
});
