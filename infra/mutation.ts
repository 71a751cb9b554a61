import { processSwitches } from './config';

/**
 * Mutation testing of the fault suite (`npm run test:faults -- --mutations`): `AQ_MUTATION=<name>`
 * switches one protection off, so that the suite can show that the scenario which needs it fails
 * without it. Each protection checks its own name in one line. Unset in production: nothing changes.
 */
export type MutationName =
  | 'no-dedupe'
  | 'ack-before-handling'
  | 'no-sold-out-check'
  | 'completed-on-claim'
  | 'no-request-lock'
  | 'no-reservation-reaper'
  | 'no-rebuild-lock'
  | 'no-use-replay'
  | 'no-restart';

const active = processSwitches().mutation;

export const mutated = (name: MutationName): boolean => active === name;
