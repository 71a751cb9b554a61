import fs from 'node:fs';
import { validateCatalog } from '../../domain/catalog';
import { loadCatalog, knownIds } from '../catalog';
import { loadConfig } from '../config';
import { probe } from '../db';
import { log } from '../log';
import { connectRedis } from '../redis';
import { openDatabases } from '../shards';
import { UsageError, parseCommand, reach, write } from './args';
import { runCommand } from './command';

const USAGE = `usage: npm run catalog -- load FILE
  load   validate the whole catalog file (JSON, contract §4), upsert it and warm SKU stock in Redis;
         a file with any problem is refused whole, each problem named, nothing changed
options: -h, --help`;

await runCommand(async () => {
  const { values, positionals } = parseCommand(process.argv.slice(2), {}, USAGE);
  const [verb, file, ...rest] = positionals;
  if (values.help) return void write(USAGE);
  if (verb !== 'load') throw new UsageError(verb ? `unknown command ${JSON.stringify(verb)}` : 'missing command (load)', USAGE);
  if (!file) throw new UsageError('missing FILE', USAGE);
  if (rest.length) throw new UsageError(`unexpected argument ${rest[0]}`, USAGE);
  let input: unknown;
  try {
    input = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`catalog refused: cannot read ${file} as JSON: ${(err as Error).message}\n`);
    return 1;
  }
  const config = loadConfig();
  const dbs = openDatabases(config, { poolSize: 2, name: 'catalog' });
  // The pools connect lazily: one probe per database turns a wrong URL into one line naming it.
  await reach('PostgreSQL', [config.databaseUrl, ...config.shardUrls], () => Promise.all([probe(dbs.global), ...dbs.shards.map((s) => probe(s.ds))])).catch(async (err) => {
    await dbs.close();
    throw err;
  });
  const redis = await reach('Redis', config.redisCluster ? config.redisCluster.nodes.map((n) => `redis://${n.host}:${n.port}`) : [config.redisUrl], () => connectRedis(config, log, 'catalog')).catch(
    async (err) => {
      await dbs.close();
      throw err;
    },
  );
  try {
    const v = validateCatalog(input, await knownIds(dbs));
    if (!v.ok) {
      process.stderr.write(`catalog refused, nothing changed; ${v.problems.length} problem(s):\n${v.problems.map((p) => `  - ${p}`).join('\n')}\n`);
      return 1;
    }
    const changes = await loadCatalog(dbs, redis, v.catalog);
    const c = v.catalog;
    log.info({ activities: c.activities.length, counts: c.counts.length, skus: c.skus.length, behaviorRebates: c.behaviorRebates.length, stock: changes }, 'catalog loaded');
  } finally {
    redis.disconnect();
    await dbs.close();
  }
});
