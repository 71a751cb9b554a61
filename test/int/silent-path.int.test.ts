import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectBroker, type Broker } from '../../infra/amqp';
import { closeDatabase, openDatabase, probe, sql, type Db } from '../../infra/db';
import { TransientError } from '../../infra/errors';
import { connectRedis, type Redis } from '../../infra/redis';
import { createTestEnv, type TestEnv } from '../support/env';
import { startProxy, type FaultProxy } from '../support/proxy';

/**
 * A silent path (the proxy drops every byte, no RST, and a connection that lost bytes stays silent):
 * each client notices within its own bound, fails as a TransientError of its dependency, and works
 * again once the path is back, on new connections.
 */
const t = suite<{ env: TestEnv; proxies: FaultProxy[] }>('silent path');
const quiet = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

t.before(async (ctx) => {
  ctx.env = await createTestEnv();
  ctx.proxies = [];
});
t.after(async (ctx) => {
  for (const p of ctx.proxies) await p.close();
  await ctx.env?.cleanup();
});

async function proxyFor(ctx: { proxies: FaultProxy[] }, url: string, defaultPort: number): Promise<FaultProxy> {
  const p = await startProxy({ host: '127.0.0.1', port: Number(new URL(url).port || defaultPort) });
  ctx.proxies.push(p);
  return p;
}

/** Ms until `f` rejects; fails the test if it resolves. */
async function failsAfter(f: () => Promise<unknown>): Promise<{ ms: number; err: unknown }> {
  const t0 = Date.now();
  const err = await f().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err, 'expected a failure on the silent path');
  return { ms: Date.now() - t0, err };
}

async function until(what: string, f: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await f().catch(() => false))) {
    if (Date.now() - t0 > ms) assert.unreachable(`${what} not within ${ms} ms`);
    await sleep(100);
  }
  return Date.now() - t0;
}

t('PostgreSQL: a query fails after statement timeout + 2 s, a new connection after the connect timeout; back after restore', async (ctx) => {
  const proxy = await proxyFor(ctx, ctx.env.config.shardUrls[0]!, 5432);
  const db: Db = openDatabase({ url: proxy.url(ctx.env.config.shardUrls[0]!), name: 'silent-test', scope: 'shard:1', poolSize: 2, statementTimeoutMs: 500, connectTimeoutMs: 1_000 });
  try {
    assert.is((await sql<{ x: number }>(db, 'SELECT 1 AS x')).rows[0]!.x, 1);
    proxy.drop();
    const q = await failsAfter(() => sql(db, 'SELECT 2 AS x'));
    assert.instance(q.err, TransientError);
    assert.is((q.err as TransientError).scope, 'shard:1');
    assert.is((q.err as TransientError).kind, 'outage');
    assert.ok(q.ms >= 2_000 && q.ms < 4_000, `query gave up after ${q.ms} ms (bound 500 + 2000)`);
    assert.is(db.circuit.state(), 'open', 'the circuit opened');
    const c = await failsAfter(() => probe(db));
    assert.ok(c.ms < 2_500, `a new connection gave up after ${c.ms} ms (bound 1000)`);
    proxy.restore();
    const back = await until('a query after restore', async () => (await sql<{ x: number }>(db, 'SELECT 3 AS x')).rows[0]!.x === 3, 10_000);
    assert.ok(back < 10_000);
  } finally {
    await closeDatabase(db);
  }
});

t('Redis: a command fails after the command timeout; the silent connection is replaced, commands work after restore', async (ctx) => {
  const proxy = await proxyFor(ctx, ctx.env.config.redisUrl, 6379);
  const redis: Redis = await connectRedis({ ...ctx.env.config, redisUrl: proxy.url(ctx.env.config.redisUrl), redisCommandTimeoutMs: 500 }, quiet, 'silent-test');
  try {
    assert.is(await redis.ping(), 'PONG');
    proxy.drop();
    const f = await failsAfter(() => redis.ping());
    assert.instance(f.err, TransientError);
    assert.is((f.err as TransientError).scope, 'redis');
    assert.ok(f.ms < 1_500, `gave up after ${f.ms} ms (bound 500)`);
    proxy.restore();
    // Without a socket timeout the old connection would stay silent and every command would time out.
    await until('a PING after restore', async () => (await redis.ping()) === 'PONG', 10_000);
  } finally {
    redis.disconnect();
  }
});

t('RabbitMQ: the heartbeat notices a silent broker within about two beats; the connection comes back after restore', async (ctx) => {
  const proxy = await proxyFor(ctx, ctx.env.config.amqpUrl, 5672);
  const url = proxy.url(ctx.env.config.amqpUrl);
  const broker: Broker = await connectBroker({ ...ctx.env.config, amqpUrl: url, amqpUrls: [url], amqpHeartbeatSeconds: 1 }, quiet, 'silent-test');
  try {
    await until('connected', async () => broker.connected(), 10_000);
    proxy.drop();
    const lost = await until('the silent broker noticed', async () => !broker.connected(), 6_000);
    assert.ok(lost <= 4_000, `noticed after ${lost} ms (heartbeat 1 s)`);
    await sleep(500);
    proxy.restore();
    await until('reconnected after restore', async () => broker.connected(), 15_000);
    await broker.publish('', 'activity.recharge', Buffer.from('{}'), { messageId: 'silent-test' }).catch((err: unknown) => assert.unreachable(`publish after reconnect: ${String(err)}`));
  } finally {
    await broker.close(500);
  }
});

t.run();
