import { log } from '../infra/log';
import { WORKERS, runWorker, type WorkerName } from './runtime';

const name = process.argv[2];
if (!name || !(WORKERS as readonly string[]).includes(name)) {
  process.stderr.write(`usage: npm run worker -- NAME   (NAME: ${WORKERS.join(', ')})\n`);
  process.exit(2);
}
runWorker(name as WorkerName).catch((err) => {
  log.fatal({ err, worker: name }, 'worker failed to start');
  process.exit(1);
});
