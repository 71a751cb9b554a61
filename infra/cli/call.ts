import { randomUUID } from 'node:crypto';
import amqplib, { type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { loadConfig } from '../config';
import { EVENTS_EXCHANGE, QUEUES, TOPICS } from '../topology';
import { runCommand } from './command';

/** `npm run call -- …`: one message sent as an upstream system would; prints the reply or the resulting event. */

const USAGE = `usage: npm run call -- partake USER ACTIVITY
       npm run call -- query USER ACTIVITY
       npm run call -- recharge USER SKU [OUT_NO]
Prints the reply (partake, query) or the recharge.completed / recharge.rejected event (recharge) as JSON.
Exit 0 on a reply or event, 1 on timeout (CALL_TIMEOUT_MS, default 10000) or broker trouble, 2 on usage error.`;

type Call =
  | Readonly<{ kind: 'request'; queue: string; payload: { userId: string; activityId: number } }>
  | Readonly<{ kind: 'recharge'; payload: { userId: string; sku: number; outBusinessNo: string } }>;

function parseArgs(argv: readonly string[]): Call | string {
  const [verb, user, id, outNo, ...rest] = argv;
  if (!verb) return 'missing command';
  if (!user?.trim() || user.length > 128) return 'USER must be a non-empty string of at most 128 characters';
  const n = Number(id);
  if (!id || !/^\d+$/.test(id) || !Number.isSafeInteger(n) || n <= 0) return `${verb === 'recharge' ? 'SKU' : 'ACTIVITY'} must be a positive whole number`;
  if (rest.length) return 'too many arguments';
  switch (verb) {
    case 'partake':
    case 'query':
      if (outNo !== undefined) return 'too many arguments';
      return { kind: 'request', queue: verb === 'partake' ? QUEUES.partake : QUEUES.accountQuery, payload: { userId: user, activityId: n } };
    case 'recharge':
      if (outNo !== undefined && (!outNo || outNo.length > 128)) return 'OUT_NO must be a non-empty string of at most 128 characters';
      return { kind: 'recharge', payload: { userId: user, sku: n, outBusinessNo: outNo ?? randomUUID() } };
    default:
      return `unknown command ${JSON.stringify(verb)}`;
  }
}

const timeoutMs = (): number => {
  const n = Number(process.env.CALL_TIMEOUT_MS ?? 10_000);
  return Number.isFinite(n) && n > 0 ? n : 10_000;
};

const say = (line: string) => process.stderr.write(`${line}\n`);

/** The broker URL without its password, for messages. */
function shown(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function run(call: Call): Promise<number> {
  const config = loadConfig();
  let conn: amqplib.ChannelModel;
  try {
    conn = await amqplib.connect(config.amqpUrl);
  } catch (err) {
    say(`cannot reach RabbitMQ at ${shown(config.amqpUrl)}: ${(err as Error).message}`);
    return 1;
  }
  conn.on('error', (err: Error) => say(`broker connection error: ${err.message}`));
  try {
    const ch = await conn.createConfirmChannel();
    ch.on('error', (err: Error) => say(`broker channel error: ${err.message}`));
    const unroutable = new Promise<string>((resolve) => ch.on('return', (m: ConsumeMessage) => resolve(m.fields.routingKey)));
    const inbox = (await ch.assertQueue('', { exclusive: true, autoDelete: true })).queue;
    let answer: Promise<unknown>;
    let queue: string;
    let what: string;
    if (call.kind === 'request') {
      queue = call.queue;
      what = `a reply from ${queue}`;
      const correlationId = randomUUID();
      answer = receive(ch, inbox, (m) => (m.properties.correlationId === correlationId ? parse(m) : undefined));
      await send(ch, queue, call.payload, { replyTo: inbox, correlationId });
    } else {
      queue = QUEUES.recharge;
      const { userId, outBusinessNo } = call.payload;
      what = `recharge.completed or recharge.rejected for user ${userId}, outBusinessNo ${outBusinessNo}`;
      // Bound before publishing, so that the event cannot pass by unseen.
      await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
      for (const key of [TOPICS.rechargeCompleted, TOPICS.rechargeRejected]) await ch.bindQueue(inbox, EVENTS_EXCHANGE, key);
      answer = receive(ch, inbox, (m) => {
        const body = parse(m) as { id?: unknown; timestamp?: unknown; data?: { userId?: unknown; outBusinessNo?: unknown } } | undefined;
        const data = body?.data;
        if (data?.userId !== userId || data?.outBusinessNo !== outBusinessNo) return undefined;
        return { type: m.fields.routingKey, id: body!.id, timestamp: body!.timestamp, data };
      });
      await send(ch, queue, call.payload, {});
    }
    const ms = timeoutMs();
    const outcome = await Promise.race([
      answer.then((v) => ({ v })),
      unroutable.then((q) => ({ unroutable: q })),
      new Promise<{ timeout: true }>((r) => setTimeout(() => r({ timeout: true }), ms).unref()),
    ]);
    if ('v' in outcome) {
      process.stdout.write(`${JSON.stringify(outcome.v, null, 2)}\n`);
      return 0;
    }
    if ('unroutable' in outcome) say(`no queue ${outcome.unroutable} on ${shown(config.amqpUrl)}: is the service installed there (npm start declares it)?`);
    else say(`timed out after ${ms} ms waiting for ${what}: is the service running (npm start)?`);
    return 1;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

function send(ch: ConfirmChannel, queue: string, payload: unknown, props: { replyTo?: string; correlationId?: string }): Promise<void> {
  return new Promise((resolve, reject) =>
    ch.publish('', queue, Buffer.from(JSON.stringify(payload)), {
      ...props,
      messageId: randomUUID(),
      contentType: 'application/json',
      persistent: true,
      mandatory: true,
      timestamp: Math.floor(Date.now() / 1000),
    }, (err) => (err ? reject(new Error(`the broker refused the message: ${err.message ?? err}`)) : resolve())),
  );
}

/** Resolves with the first delivery that `pick` turns into a value; the rest are ignored. */
function receive(ch: ConfirmChannel, queue: string, pick: (m: ConsumeMessage) => unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    ch.consume(queue, (m) => {
      if (!m) return;
      const v = pick(m);
      if (v !== undefined) resolve(v);
    }, { noAck: true }).catch(reject);
  });
}

function parse(m: ConsumeMessage): unknown {
  try {
    return JSON.parse(m.content.toString('utf8'));
  } catch {
    return { unparsable: m.content.toString('utf8') };
  }
}

await runCommand(async () => {
  const call = parseArgs(process.argv.slice(2));
  if (typeof call === 'string') {
    say(`${call}\n${USAGE}`);
    return 2;
  }
  return run(call);
});
