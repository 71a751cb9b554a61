import amqplib, { type ConfirmChannel, type GetMessage } from 'amqplib';
import { loadConfig } from '../config';
import { republishProperties } from '../amqp';
import { DEAD_LETTER_QUEUE } from '../topology';
import { UsageError, parseCommand, reach, wholeNumber, write } from './args';
import { runCommand } from './command';

const USAGE = `usage: npm run dead-letter -- list [--limit N] [--json]
       npm run dead-letter -- requeue [--id ID ...] [--dry-run] [--json]
  list      dead-lettered messages with their original queue and reason (the queue is left as it was)
  requeue   send them back to their queue; --dry-run shows what would be sent
  ID        the message id (AMQP messageId, else the envelope id); without --id every dead letter is requeued
options: -h, --help`;
const HELP: Record<string, string> = {
  list: 'usage: npm run dead-letter -- list [--limit N] [--json]\nDead-lettered messages, oldest first, with their original queue, reason (x-error) and deaths; --limit (default all) shows the first N.\nThe queue keeps its content and order.',
  requeue:
    'usage: npm run dead-letter -- requeue [--id ID ...] [--dry-run] [--json]\nRepublishes (with confirms) to the original queue, strips the death headers, adds x-requeued-count and x-last-error.\nWithout --id every dead letter; an id not in the queue is reported as not found; --dry-run changes nothing.',
};
const OPTIONS = { json: { type: 'boolean' }, limit: { type: 'string' }, id: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean' } } as const;

/** Headers that describe a past death; a requeued message starts clean and keeps one line of history. */
const DEATH_HEADERS = /^x-(death|error|original-queue|first-death-.*|last-death-.*|delivery-count)$/;

type Letter = Readonly<{ msg: GetMessage; messageId: string | undefined; queue: string | undefined; reason: string; deaths: number; body: string }>;

/**
 * Reads the dead-letter queue without losing it: every message is fetched unacknowledged (at most
 * the count seen at the start), and what is not requeued is given back with one nack-all at the end,
 * in delivery order, so a listing keeps the queue's content and order. The broker's per-message
 * delivery counter on the dead-letter queue grows by one per listing; nothing reads it.
 */
await runCommand(async () => {
  const { values, positionals } = parseCommand(process.argv.slice(2), OPTIONS, USAGE);
  const [verb, ...more] = positionals;
  if (values.help) return void write(verb && HELP[verb] ? HELP[verb] : USAGE);
  if (!verb) throw new UsageError('missing command (list or requeue)', USAGE);
  if (verb !== 'list' && verb !== 'requeue') throw new UsageError(`unknown command ${JSON.stringify(verb)}`, USAGE);
  const usage = HELP[verb]!;
  // `--id A B C` and `--id A --id B` both work.
  if (!values.id && more.length) throw new UsageError(`unexpected argument ${more[0]}`, usage);
  if (verb === 'list' && (values.id || values['dry-run'])) throw new UsageError(`${values.id ? '--id' : '--dry-run'} is for requeue`, usage);
  if (verb === 'requeue' && values.limit !== undefined) throw new UsageError('--limit is for list', usage);
  const ids = values.id ? [...values.id, ...more] : undefined;
  const limit = wholeNumber(values.limit, '--limit', usage);
  const json = !!values.json;
  const dry = !!values['dry-run'];

  const config = loadConfig();
  const conn = await reach('RabbitMQ', [config.amqpUrl], () => amqplib.connect(config.amqpUrl, { clientProperties: { connection_name: `activity-quota:dead-letter-cli:${process.pid}` } }));
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    const total = await messageCount(conn, DEAD_LETTER_QUEUE);
    const letters: Letter[] = [];
    for (let i = 0; i < total; i++) {
      const m = await ch.get(DEAD_LETTER_QUEUE, { noAck: false });
      if (!m) break;
      letters.push(describe(m));
    }

    if (verb === 'list') {
      const shown = letters.slice(0, limit ?? letters.length);
      if (json) write(JSON.stringify(shown.map(({ msg: _m, ...l }) => l)));
      else printTable(shown, letters.length);
    } else {
      const { done, kept } = await requeue(ch, letters, ids, dry);
      if (json) write(JSON.stringify(dry ? { dryRun: true, requeued: done, kept } : { requeued: done, kept }));
      else {
        process.stdout.write(`${done.length} message(s) ${dry ? 'would be ' : ''}requeued${done.map((d) => `\n  ${d.messageId ?? '(no id)'} -> ${d.queue}`).join('')}\n`);
        for (const k of kept) process.stdout.write(`kept ${k.messageId ?? '(no id)'}: ${k.why}\n`);
      }
    }
    ch.nackAll(true);
    await ch.close();
    return 0;
  } finally {
    await conn.close().catch(() => undefined);
  }
});

type Requeued = { done: Array<{ messageId: string | undefined; queue: string }>; kept: Array<{ messageId: string | undefined; why: string }> };

/** Sends the wanted letters (all without `ids`) back to their queue and acks them; with `dry`, only says which it would. */
async function requeue(ch: ConfirmChannel, letters: readonly Letter[], ids: readonly string[] | undefined, dry: boolean): Promise<Requeued> {
  let returned = false;
  ch.on('return', () => (returned = true));
  const wanted = ids ? new Set(ids) : undefined;
  const out: Requeued = { done: [], kept: [] };
  for (const l of letters) {
    if (wanted && !(l.messageId && wanted.has(l.messageId))) continue;
    if (!l.queue) {
      out.kept.push({ messageId: l.messageId, why: 'no original queue in its headers' });
      continue;
    }
    if (!dry) {
      // One at a time: a return arrives before its confirm, so `returned` belongs to this publish.
      returned = false;
      const ok = await publish(ch, l.queue, l);
      if (!ok || returned) {
        out.kept.push({ messageId: l.messageId, why: `queue ${l.queue} does not exist` });
        continue;
      }
      ch.ack(l.msg);
    }
    out.done.push({ messageId: l.messageId, queue: l.queue });
  }
  if (wanted) for (const id of wanted) if (!letters.some((l) => l.messageId === id)) out.kept.push({ messageId: id, why: 'not found' });
  return out;
}

async function messageCount(conn: amqplib.ChannelModel, queue: string): Promise<number> {
  const probe = await conn.createChannel();
  probe.on('error', () => undefined);
  try {
    return (await probe.checkQueue(queue)).messageCount;
  } catch {
    return 0; // no dead-letter queue yet: nothing was ever dead-lettered here
  } finally {
    await probe.close().catch(() => undefined);
  }
}

function describe(m: GetMessage): Letter {
  const h = (m.properties.headers ?? {}) as Record<string, unknown>;
  const deaths = Array.isArray(h['x-death']) ? (h['x-death'] as Array<Record<string, unknown>>) : [];
  const text = m.content.toString('utf8');
  let envelopeId: string | undefined;
  try {
    const b = JSON.parse(text);
    if (b && typeof b === 'object' && typeof b.id === 'string' && 'data' in b) envelopeId = b.id;
  } catch {
    // not JSON: shown as text
  }
  const queue = str(h['x-original-queue']) ?? str(deaths[0]?.queue) ?? str(h['x-first-death-queue']);
  const brokerReason = str(deaths[0]?.reason) ?? str(h['x-first-death-reason']);
  return {
    msg: m,
    messageId: m.properties.messageId ? String(m.properties.messageId) : envelopeId,
    queue,
    reason: str(h['x-error']) ?? (brokerReason ? `broker: ${brokerReason}` : 'unknown'),
    deaths: deaths.reduce((n, d) => n + (Number(d.count) || 0), 0),
    body: text.replace(/\s+/g, ' ').slice(0, 200),
  };
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v.toString() : String(v);
}

function publish(ch: ConfirmChannel, queue: string, l: Letter): Promise<boolean> {
  const p = l.msg.properties;
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.headers ?? {})) if (!DEATH_HEADERS.test(k)) headers[k] = v;
  headers['x-requeued-count'] = (Number(headers['x-requeued-count']) || 0) + 1;
  headers['x-last-error'] = l.reason;
  return new Promise((resolve) => {
    ch.publish('', queue, l.msg.content, { ...republishProperties(p), mandatory: true, headers }, (err) => resolve(!err));
  });
}

function printTable(letters: Letter[], total: number): void {
  const head = ['message_id', 'queue', 'reason', 'deaths', 'body'];
  const cells = letters.map((l) => [l.messageId ?? '(none)', l.queue ?? '?', l.reason.slice(0, 80), String(l.deaths), l.body.slice(0, 60)]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(head), ...cells.map(line)].join('\n')}\n(${letters.length === total ? `${total}` : `${letters.length} of ${total}`} dead letter(s))\n`);
}
