import { QUEUES } from '../../infra/topology';
import { consumeNotImplemented } from '../not-implemented';
import type { Start } from '../runtime';

export const start: Start = async (ctx) => consumeNotImplemented(ctx, [QUEUES.recharge, QUEUES.behavior]);
