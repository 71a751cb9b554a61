/**
 * `npm run test:faults -- --mutations`: each protection switched off in turn by `AQ_MUTATION`
 * (read only by the code under test, infra/mutation.ts: one check at the protection's site), and
 * the scenario that should catch it run against that build. Caught = the scenario does not pass.
 */
export type Mutation = Readonly<{ name: string; protection: string; scenario: string }>;

export const MUTATIONS: readonly Mutation[] = [
  { name: 'no-dedupe', protection: 'dedupe before stock: an existing order or rejection is not looked for (workers/recharge/handle.ts)', scenario: 'duplicates' },
  { name: 'ack-before-handling', protection: 'ack after commit: the consumer acks before the handler runs (infra/amqp/consumer.ts)', scenario: 'kill-tree' },
  { name: 'no-sold-out-check', protection: 'the sold-out check of the TAKE script (infra/stock.ts)', scenario: 'recharge-10k-stock-100' },
  { name: 'completed-on-claim', protection: 'mark after confirm: tasks are marked completed before they are published (infra/relay.ts)', scenario: 'amqp-cut' },
  { name: 'no-request-lock', protection: 'the request lock on (userId, outBusinessNo), which the reaper takes before it decides (workers/recharge/store.ts lockRequest)', scenario: 'eager-reaper' },
  { name: 'no-reservation-reaper', protection: 'the reaper of orphaned stock reservations (workers/recharge/stock-jobs.ts)', scenario: 'kill-tree' },
  { name: 'no-rebuild-lock', protection: "the rebuild's exclusive SKU lock on every shard (infra/stock.ts rebuildLocked)", scenario: 'redis-flush' },
  { name: 'no-use-replay', protection: 'a use delivered again after it applied is recognised by its message id (workers/partake/raffle-order.ts, `changed_by`)', scenario: 'crash-use-after-commit' },
  { name: 'no-restart', protection: 'the supervisor restarts a worker that exited (workers/supervisor.ts)', scenario: 'poison' },
];
