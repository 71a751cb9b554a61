import { loadConfig } from '../config';
import { sql } from '../db';
import { replayTasks, type ReplaySelector } from '../relay';
import { openDatabases } from '../shards';
import { runCommand } from './command';

const USAGE = `usage: npm run tasks -- list [--state create|completed|fail|dead] [--limit N] [--json]
       npm run tasks -- replay (--id ID ... | --state fail|dead)
  ID: a message id, SHARD:ID as listed, or a bare task id (matched in every shard)`;
const STATES = ['create', 'completed', 'fail', 'dead'];

type Row = { shard: number; id: string; message_id: string; topic: string; state: string; attempts: number; next_attempt_at: Date; last_error: string | null; create_time: Date };

await runCommand(async () => {
  const [verb, ...args] = process.argv.slice(2);
  const opts = parseArgs(args);
  if (!opts || (verb !== 'list' && verb !== 'replay')) return usage();
  const config = loadConfig();
  const dbs = await openDatabases(config, { poolSize: 2, name: 'tasks-cli' });
  try {
    if (verb === 'list') {
      if (opts.ids.length || (opts.state && !STATES.includes(opts.state))) return usage();
      const limit = opts.limit ?? 100;
      const rows: Row[] = [];
      for (const s of dbs.shards) {
        const r = await sql<Omit<Row, 'shard'>>(
          s.ds,
          `SELECT id::text AS id, message_id, topic, state, attempts, next_attempt_at, last_error, create_time FROM task
            WHERE ($1::text IS NULL OR state = $1) ORDER BY create_time DESC, id DESC LIMIT $2`,
          [opts.state ?? null, limit],
        );
        rows.push(...r.rows.map((x) => ({ shard: s.shard, ...x })));
      }
      // Newest first across shards, then the overall limit.
      rows.sort((a, b) => b.create_time.getTime() - a.create_time.getTime());
      const shown = rows.slice(0, limit);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(shown.map(({ create_time, ...r }) => ({ ...r, create_time: create_time.toISOString(), next_attempt_at: r.next_attempt_at.toISOString() })))}\n`);
      } else {
        printTable(shown);
      }
      return 0;
    }
    const sel: ReplaySelector | undefined = opts.ids.length && !opts.state ? { ids: opts.ids } : !opts.ids.length && (opts.state === 'fail' || opts.state === 'dead') ? { state: opts.state } : undefined;
    if (!sel || opts.limit !== undefined) return usage();
    const replayed = await replayTasks(dbs.shards, sel);
    if (opts.json) process.stdout.write(`${JSON.stringify(replayed)}\n`);
    else process.stdout.write(`${replayed.length} task(s) re-queued for publishing${replayed.length ? `: ${replayed.map((t) => `${t.shard}:${t.id} ${t.messageId}`).join(', ')}` : ''}\n`);
    return 0;
  } finally {
    await dbs.close();
  }
});

function usage(): number {
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

function parseArgs(args: string[]): { state?: string; limit?: number; json: boolean; ids: string[] } | undefined {
  const o: { state?: string; limit?: number; json: boolean; ids: string[] } = { json: false, ids: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--state' && args[i + 1]) o.state = args[++i];
    else if (a === '--limit' && args[i + 1]) {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) return undefined;
      o.limit = n;
    } else if (a === '--id' && args[i + 1]) {
      // `--id A B C` and `--id A --id B` both work.
      while (args[i + 1] && !args[i + 1]!.startsWith('--')) o.ids.push(args[++i]!);
    } else return undefined;
  }
  return o;
}

function printTable(rows: Row[]): void {
  const head = ['shard', 'id', 'message_id', 'topic', 'state', 'attempts', 'next_attempt_at', 'last_error'];
  const cells = rows.map((r) => [String(r.shard), r.id, r.message_id, r.topic, r.state, String(r.attempts), r.next_attempt_at.toISOString(), (r.last_error ?? '').slice(0, 80)]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line(head), ...cells.map(line)].join('\n')}\n(${rows.length} task(s))\n`);
}
