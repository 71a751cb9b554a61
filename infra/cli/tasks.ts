import { loadConfig } from '../config';
import { probe } from '../db';
import { findTasks, listTasks, replayTasks, type ReplaySelector } from '../outbox';
import { openDatabases } from '../shards';
import { UsageError, parseCommand, printRows, reach, wholeNumber, write } from './args';
import { runCommand } from './command';

const USAGE = `usage: npm run tasks -- list [--state create|completed|fail|dead] [--limit N] [--json]
       npm run tasks -- replay (--id ID ... | --state fail|dead) [--dry-run] [--json]
  list     outbox tasks of every shard, newest first (--limit, default 100)
  replay   re-queue tasks for publishing (same message id); --dry-run shows what would be re-queued
  ID       a message id, SHARD:ID as listed, or a bare task id (matched in every shard)
options: -h, --help`;
const HELP: Record<string, string> = {
  list: 'usage: npm run tasks -- list [--state create|completed|fail|dead] [--limit N] [--json]\nOutbox tasks across all shards, newest first; --limit (1-100000, default 100) caps the whole list.',
  replay:
    'usage: npm run tasks -- replay (--id ID ... | --state fail|dead) [--dry-run] [--json]\nPuts tasks back to create (attempts 0, due now, same message id); tasks already create are left alone.\nID: a message id, SHARD:ID as `tasks list` prints it, or a bare task id (matched in every shard).\nAn id that matches no task is reported as not found.',
};
const STATES = ['create', 'completed', 'fail', 'dead'];
const OPTIONS = { state: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, id: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean' } } as const;
const COLUMNS = ['shard', 'id', 'message_id', 'topic', 'state', 'attempts', 'next_attempt_at', 'last_error'];

await runCommand(async () => {
  const argv = process.argv.slice(2);
  const { values, positionals } = parseCommand(argv, OPTIONS, USAGE);
  // `--id A B C` and `--id A --id B` both work: the extra positionals after the verb are ids.
  const [verb, ...more] = positionals;
  if (values.help) return void write(verb && HELP[verb] ? HELP[verb] : USAGE);
  if (!verb) throw new UsageError('missing command (list or replay)', USAGE);
  if (verb !== 'list' && verb !== 'replay') throw new UsageError(`unknown command ${JSON.stringify(verb)}`, USAGE);
  const usage = HELP[verb]!;
  const ids = [...(values.id ?? []), ...(values.id ? more : [])];
  if (!values.id && more.length) throw new UsageError(`unexpected argument ${more[0]}`, usage);
  if (verb === 'list') {
    if (values.id || values['dry-run']) throw new UsageError(`${values.id ? '--id' : '--dry-run'} is for replay`, usage);
    if (values.state !== undefined && !STATES.includes(values.state)) throw new UsageError(`--state must be one of ${STATES.join(', ')}`, usage);
  } else {
    if (values.limit !== undefined) throw new UsageError('--limit is for list', usage);
    if (!!ids.length === (values.state !== undefined)) throw new UsageError('give exactly one of --id ID ... or --state fail|dead', usage);
    if (values.state !== undefined && values.state !== 'fail' && values.state !== 'dead') throw new UsageError('--state must be fail or dead', usage);
  }
  const limit = wholeNumber(values.limit, '--limit', usage, 1, 100_000) ?? 100;
  const config = loadConfig();
  const dbs = openDatabases(config, { poolSize: 2, name: 'tasks-cli' });
  // The pools connect lazily: one probe per database turns a wrong URL into one line naming it.
  await reach('PostgreSQL', [config.databaseUrl, ...config.shardUrls], () => Promise.all([probe(dbs.global), ...dbs.shards.map((s) => probe(s.ds))])).catch(async (err) => {
    await dbs.close();
    throw err;
  });
  try {
    if (verb === 'list') {
      // Newest first across shards, then the overall limit.
      const shown = (await listTasks(dbs.shards, values.state, limit)).map(({ create_time, ...r }) => ({
        ...r,
        create_time: create_time.toISOString(),
        next_attempt_at: r.next_attempt_at.toISOString(),
      }));
      printRows(shown, COLUMNS, !!values.json, 'task(s)');
      return 0;
    }
    const sel: ReplaySelector = ids.length ? { ids } : { state: values.state as 'fail' | 'dead' };
    const dry = !!values['dry-run'];
    const matched = await findTasks(dbs.shards, sel);
    const replayed = dry ? matched.filter((t) => t.state !== 'create') : await replayTasks(dbs.shards, sel);
    const notFound = ids.filter((id) => !matched.some((t) => t.message_id === id || `${t.shard}:${t.id}` === id || t.id === id));
    const skipped = matched.filter((t) => t.state === 'create');
    const list = replayed.map((t) => ({ shard: t.shard, id: t.id, messageId: 'messageId' in t ? t.messageId : t.message_id, topic: t.topic }));
    if (values.json) return void write(JSON.stringify({ dryRun: dry, replayed: list, alreadyQueued: skipped.map((t) => `${t.shard}:${t.id}`), notFound }));
    write(`${list.length} task(s) ${dry ? 'would be ' : ''}re-queued for publishing${list.length ? `: ${list.map((t) => `${t.shard}:${t.id} ${t.messageId}`).join(', ')}` : ''}`);
    if (skipped.length) write(`${skipped.length} task(s) already queued (state create), left alone: ${skipped.map((t) => `${t.shard}:${t.id}`).join(', ')}`);
    for (const id of notFound) write(`not found: ${id}`);
    return 0;
  } finally {
    await dbs.close();
  }
});
