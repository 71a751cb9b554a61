import { randomInt } from 'node:crypto';

/** Time and ids, handed to every worker the same way (its Context) and from there into the domain. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** A 12-digit numeric order id; uniqueness is enforced by the split table's unique key (a clash is retried). */
export const newOrderId = (): string => String(randomInt(100_000_000_000, 1_000_000_000_000));
