import { randomUUID } from 'node:crypto';
import { connect, ContractError, TimeoutError, UnroutableError, type Client, type Event } from '../client';
import { loadConfig } from '../config';
import { EVENT_DATA } from '../contract/events';
import { reasonOf } from '../contract/fields';
import { TOPICS } from '../topology';
import { CliError, UsageError, parseCommand, reach, wholeNumber, write } from './args';
import { runCommand } from './command';

/** `npm run call -- …`: one message sent as an upstream system would, with the typed client; prints the reply or the resulting event. */

const USAGE = `usage: npm run call -- partake USER ACTIVITY
       npm run call -- query USER ACTIVITY
       npm run call -- history USER ACTIVITY [--limit N] [--before MS]
       npm run call -- use USER ORDER
       npm run call -- cancel USER ORDER
       npm run call -- recharge USER SKU [OUT_NO]
       npm run call -- behavior USER BEHAVIOR OUT_NO
options: --timeout MS (default CALL_TIMEOUT_MS, else 10000), -h, --help
Prints the reply (partake, query, history, use, cancel) or the recharge.completed / recharge.rejected
event (recharge, behavior: the first one for that user) as JSON.
Exit 0 on a reply or event, 1 on timeout, broker trouble or a reply off the contract, 2 on a usage error.`;

const OPTIONS = { limit: { type: 'string' }, before: { type: 'string' }, timeout: { type: 'string' } } as const;

type Run = (c: Client, timeoutMs: number) => Promise<unknown>;

function positiveId(v: string | undefined, name: string): number {
  if (v === undefined) throw new UsageError(`missing ${name}`, USAGE);
  return wholeNumber(v, name, USAGE)!;
}
function text(v: string | undefined, name: string): string {
  if (v === undefined) throw new UsageError(`missing ${name}`, USAGE);
  if (!v || [...v].length > 128) throw new UsageError(`${name} must be 1 to 128 characters`, USAGE);
  return v;
}

/** The command line as the call to make; a UsageError names what is wrong. */
export function plan(argv: readonly string[]): Run | 'help' {
  const { values, positionals } = parseCommand(argv, OPTIONS, USAGE);
  if (values.help) return 'help';
  const [verb, user, arg, extra, ...rest] = positionals;
  if (!verb) throw new UsageError('missing command', USAGE);
  const argsOf = (n: number) => {
    const given = positionals.length - 1;
    if (given > n) throw new UsageError(`too many arguments for ${verb}: ${positionals.slice(n + 1).join(' ')}`, USAGE);
  };
  if ((values.limit !== undefined || values.before !== undefined) && verb !== 'history') throw new UsageError('--limit and --before are for history', USAGE);
  switch (verb) {
    case 'partake':
    case 'query': {
      argsOf(2);
      const req = { userId: text(user, 'USER'), activityId: positiveId(arg, 'ACTIVITY') };
      return (c, timeoutMs) => (verb === 'partake' ? c.partake(req, { timeoutMs }) : c.query(req, { timeoutMs }));
    }
    case 'history': {
      argsOf(2);
      const limit = wholeNumber(values.limit, '--limit', USAGE, 1, 100);
      const before = wholeNumber(values.before, '--before', USAGE, 0);
      const req = { userId: text(user, 'USER'), activityId: positiveId(arg, 'ACTIVITY'), ...(limit ? { limit } : {}), ...(before !== undefined ? { before } : {}) };
      return (c, timeoutMs) => c.history(req, { timeoutMs });
    }
    case 'use':
    case 'cancel': {
      argsOf(2);
      const req = { userId: text(user, 'USER'), orderId: text(arg, 'ORDER') };
      return (c, timeoutMs) => (verb === 'use' ? c.use(req, { timeoutMs }) : c.cancel(req, { timeoutMs }));
    }
    case 'recharge': {
      argsOf(3);
      const req = { userId: text(user, 'USER'), sku: positiveId(arg, 'SKU'), outBusinessNo: extra === undefined ? randomUUID() : text(extra, 'OUT_NO') };
      return (c, timeoutMs) => outcome(c, timeoutMs, req.userId, req.outBusinessNo, () => c.recharge(req));
    }
    case 'behavior': {
      argsOf(3);
      const req = { userId: text(user, 'USER'), behavior: text(arg, 'BEHAVIOR'), outBusinessNo: text(extra, 'OUT_NO') };
      return (c, timeoutMs) => outcome(c, timeoutMs, req.userId, undefined, () => c.behavior(req));
    }
    default:
      void rest;
      throw new UsageError(`unknown command ${JSON.stringify(verb)}`, USAGE);
  }
}

/** Subscribes before sending, so that the event cannot pass by unseen; resolves with the first matching one. */
async function outcome(c: Client, timeoutMs: number, userId: string, outBusinessNo: string | undefined, send: () => Promise<string>): Promise<unknown> {
  let found!: (e: Event) => void;
  const first = new Promise<Event>((resolve) => (found = resolve));
  const sub = await c.subscribe(
    [TOPICS.rechargeCompleted, TOPICS.rechargeRejected],
    (e) => {
      const d = e.data as { userId?: unknown; outBusinessNo?: unknown };
      if (d?.userId === userId && (outBusinessNo === undefined || d.outBusinessNo === outBusinessNo)) found(e);
    },
    { validate: false, dedupe: false },
  );
  try {
    await send();
    const what = `recharge.completed or recharge.rejected for user ${userId}${outBusinessNo ? `, outBusinessNo ${outBusinessNo}` : ''}`;
    const e = await Promise.race([
      first,
      new Promise<never>((_, reject) => setTimeout(() => reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}: is the service running (npm start)?`)), timeoutMs).unref()),
    ]);
    const checked = EVENT_DATA[e.type].safeParse(e.data);
    if (!checked.success) throw new ContractError(`${e.type} event does not match the contract: ${reasonOf(checked.error)}`, e);
    return e;
  } finally {
    await sub.close();
  }
}

await runCommand(async () => {
  const argv = process.argv.slice(2);
  const run = plan(argv);
  if (run === 'help') return void write(USAGE);
  const timeout = parseCommand(argv, OPTIONS, USAGE).values.timeout;
  const config = loadConfig();
  const ms = timeout === undefined ? config.callTimeoutMs : wholeNumber(timeout, '--timeout', USAGE)!;
  const client = await reach('RabbitMQ', [config.amqpUrl], () => connect({ url: config.amqpUrl, timeoutMs: ms, name: `activity-quota:call:${process.pid}` }));
  try {
    write(JSON.stringify(await run(client, ms), null, 2));
    return 0;
  } catch (err) {
    if (err instanceof ContractError) {
      write(JSON.stringify(err.body, null, 2));
      throw new CliError(err.message);
    }
    if (err instanceof TimeoutError) throw new CliError(err.message.replace(/^no reply/, `timed out after ${ms} ms: no reply`));
    if (err instanceof UnroutableError) throw new CliError(err.message);
    throw err;
  } finally {
    await client.close();
  }
});
