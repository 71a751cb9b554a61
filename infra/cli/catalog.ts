import fs from 'node:fs';
import { validateCatalog } from '../../domain/catalog';
import { loadCatalog, knownIds } from '../catalog';
import { loadConfig } from '../config';
import { log } from '../log';
import { connectRedis } from '../redis';
import { openDatabases } from '../shards';
import { runCommand } from './command';

const USAGE = 'usage: npm run catalog -- load FILE';

await runCommand(async () => {
  const [verb, file, ...rest] = process.argv.slice(2);
  if (verb !== 'load' || !file || rest.length) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let input: unknown;
  try {
    input = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`catalog refused: cannot read ${file} as JSON: ${(err as Error).message}\n`);
    return 1;
  }
  const config = loadConfig();
  const dbs = await openDatabases(config, { poolSize: 2, name: 'catalog' });
  const redis = await connectRedis(config, log, 'catalog');
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
