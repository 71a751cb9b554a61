import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startProxy, type FaultProxy } from '../support/proxy';

const t = suite<{ echo: net.Server; echoPort: number; proxy: FaultProxy }>('fault proxy');

t.before(async (ctx) => {
  ctx.echo = net.createServer((s) => (s.on('error', () => undefined), s.pipe(s)));
  await new Promise<void>((r) => ctx.echo.listen(0, '127.0.0.1', () => r()));
  ctx.echoPort = (ctx.echo.address() as net.AddressInfo).port;
  ctx.proxy = await startProxy({ host: '127.0.0.1', port: ctx.echoPort });
});

t.after(async (ctx) => {
  await ctx.proxy.close();
  await new Promise<void>((r) => ctx.echo.close(() => r()));
});

type Conn = { sock: net.Socket; got(): string; closed(): boolean };

async function open(port: number): Promise<Conn> {
  const sock = net.connect(port, '127.0.0.1');
  let data = '';
  let closed = false;
  sock.on('data', (d) => (data += d));
  sock.on('error', () => undefined);
  sock.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => (sock.once('connect', () => resolve()), sock.once('error', reject)));
  return { sock, got: () => data, closed: () => closed };
}

const until = async (f: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
};

t('forwards both ways', async ({ proxy }) => {
  const c = await open(proxy.port);
  c.sock.write('hello');
  assert.ok(await until(() => c.got() === 'hello'), `echo came back as ${JSON.stringify(c.got())}`);
  c.sock.destroy();
});

t('cut drops every open connection; new ones work', async ({ proxy }) => {
  const a = await open(proxy.port);
  const b = await open(proxy.port);
  await until(() => proxy.connections() === 2);
  assert.is(proxy.cut(), 2);
  assert.ok(await until(() => a.closed() && b.closed()), 'clients were not closed');
  const c = await open(proxy.port);
  c.sock.write('again');
  assert.ok(await until(() => c.got() === 'again'));
  c.sock.destroy();
});

t('stall holds bytes without losing them; restore delivers them', async ({ proxy }) => {
  const c = await open(proxy.port);
  c.sock.write('one');
  assert.ok(await until(() => c.got() === 'one'));
  proxy.stall();
  c.sock.write('two');
  const late = await open(proxy.port); // a connection opened during the stall is stalled too
  late.sock.write('three');
  assert.not.ok(await until(() => c.got().length > 3 || late.got().length > 0, 300), 'bytes moved during the stall');
  assert.not.ok(c.closed());
  proxy.restore();
  assert.ok(await until(() => c.got() === 'onetwo' && late.got() === 'three'), `after restore: ${c.got()} / ${late.got()}`);
  c.sock.destroy();
  late.sock.destroy();
});

t('down refuses new connections until restore', async ({ proxy }) => {
  const c = await open(proxy.port);
  await until(() => proxy.connections() === 1);
  proxy.down();
  assert.ok(await until(() => c.closed()));
  const refused = await open(proxy.port).then((x) => until(() => x.closed(), 1_000));
  assert.ok(refused, 'a connection during down was not closed');
  proxy.restore();
  const ok = await open(proxy.port);
  ok.sock.write('back');
  assert.ok(await until(() => ok.got() === 'back'));
  ok.sock.destroy();
});

t('drop swallows bytes both ways without closing anything; after restore only connections that lost nothing work', async ({ proxy }) => {
  const idle = await open(proxy.port);
  const busy = await open(proxy.port);
  busy.sock.write('one');
  assert.ok(await until(() => busy.got() === 'one'));
  proxy.drop();
  busy.sock.write('two');
  const late = await open(proxy.port); // accepted (no refusal), then silent
  late.sock.write('three');
  assert.not.ok(await until(() => busy.got().length > 3 || late.got().length > 0 || busy.closed() || late.closed() || idle.closed(), 400), 'a byte or a close got through');
  proxy.restore();
  idle.sock.write('four');
  busy.sock.write('five');
  assert.ok(await until(() => idle.got() === 'four'), `an idle connection did not come back: ${JSON.stringify(idle.got())}`);
  assert.not.ok(await until(() => busy.got().length > 3 || late.got().length > 0, 400), 'a connection that lost bytes spoke again');
  const fresh = await open(proxy.port);
  fresh.sock.write('six');
  assert.ok(await until(() => fresh.got() === 'six'));
  busy.sock.destroy();
  assert.ok(await until(() => proxy.connections() === 3), `a client closing a silent connection ends the pair (${proxy.connections()} open)`);
  for (const c of [idle, late, fresh]) c.sock.destroy();
});

t('a PostgreSQL client through the proxy sees a cut as a connection error and reconnects', async () => {
  const p = await startProxy({ host: '127.0.0.1', port: 5432 });
  try {
    const pool = new pg.Pool({ connectionString: p.url('postgres://postgres@127.0.0.1:5432/postgres'), max: 1 });
    pool.on('error', () => undefined);
    assert.is((await pool.query('select 1 as x')).rows[0].x, 1);
    p.cut();
    await new Promise((r) => setTimeout(r, 50));
    const again = await pool.query('select 2 as x').catch(() => pool.query('select 2 as x'));
    assert.is(again.rows[0].x, 2);
    await pool.end();
  } finally {
    await p.close();
  }
});

t.run();
