import { SpanKind, SpanStatusCode, context, trace, type Span } from '@opentelemetry/api';
import type { ConsumeMessage } from 'amqplib';
import { classify, type Failure } from '../errors';
import type { Logger } from '../log';
import { handlerDuration, messagesTotal } from '../metrics';
import { decide, failuresOf, type Outcome } from './policy';
import type { Publisher } from './publisher';
import { mutated } from '../mutation';
import { extractTraceContext, tracer, withLogFields } from '../trace-context';

/** A handler returns when the message is done, throws to let the policy decide (infra/amqp/policy.ts). */
export type Handler = (msg: ConsumeMessage, log: Logger) => Promise<void>;

/** The part of a channel the delivery loop needs (a fake one in unit tests). */
export type Settle = Readonly<{ ack(msg: ConsumeMessage): void; reject(msg: ConsumeMessage, requeue: boolean): void; nack(msg: ConsumeMessage, allUpTo: boolean, requeue: boolean): void }>;

export type DeliveryEnv = Readonly<{
  queue: string;
  handler: Handler;
  publisher: Pick<Publisher, 'park' | 'deadLetter' | 'connected'>;
  log: Logger;
  deliveryLimit: number;
  outageHold: number;
  stopping(): boolean;
  /** Deliveries of this consumer held right now, per dependency (shared by its deliveries). */
  held: Map<string, number>;
  /** False once the channel that delivered is gone: its deliveries come again, settle nothing. */
  live(ch: Settle): boolean;
  sleep(ms: number): Promise<void>;
}>;

/**
 * One delivery, from the first handler run to its settlement, in a consumer span continuing the
 * sender's trace (W3C `traceparent` in the AMQP headers); every log line written meanwhile carries
 * the message's `messageId` and `correlationId` (infra/log.ts). Returns the final outcome's kind.
 */
export function runDelivery(env: DeliveryEnv, ch: Settle, msg: ConsumeMessage): Promise<Outcome['kind'] | 'stale'> {
  const { messageId, correlationId, headers } = msg.properties;
  const parent = extractTraceContext(headers, context.active());
  const span = tracer().startSpan(
    `process ${env.queue}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': env.queue,
        ...(messageId ? { 'messaging.message.id': String(messageId) } : {}),
        ...(correlationId ? { 'messaging.message.conversation_id': String(correlationId) } : {}),
        'messaging.rabbitmq.message.delivery_tag': msg.fields.deliveryTag,
      },
    },
    parent,
  );
  const ctx = withLogFields({ messageId, correlationId }, trace.setSpan(parent, span));
  return context.with(ctx, () => deliver(env, ch, msg, span)).finally(() => span.end());
}

async function deliver(env: DeliveryEnv, ch: Settle, msg: ConsumeMessage, span: Span): Promise<Outcome['kind'] | 'stale'> {
  const log = env.log.child({ queue: env.queue });
  const failures = failuresOf(msg.properties.headers);
  let holding: string | undefined;
  if (mutated('ack-before-handling')) ch.ack(msg);
  // A message back from the park queue and parked again is logged at debug: one warning per message, not one per round trip.
  const cameBack = msg.properties.headers?.['x-aq-parked'] !== undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      const failure = await runHandler(env, msg, log);
      const outcome = decide(
        failure,
        { failures, attempt, holding },
        {
          stopping: env.stopping(),
          deliveryLimit: env.deliveryLimit,
          held: env.held,
          outageHold: env.outageHold,
          canPark: env.publisher.connected(),
        },
      );
      if (failure && outcome.kind !== 'dead-letter') (attempt === 0 && !cameBack ? log.warn : log.debug).call(log, { failure, attempt }, `delivery failed: ${outcome.kind}`);
      if (failure) span.addEvent('handler failed', { 'aq.failure': failure.kind, 'aq.outcome': outcome.kind });
      if (outcome.kind === 'hold') {
        if (holding !== outcome.scope) {
          if (holding) env.held.set(holding, (env.held.get(holding) ?? 1) - 1);
          env.held.set(outcome.scope, (env.held.get(outcome.scope) ?? 0) + 1);
          holding = outcome.scope;
        }
        count(env.queue, 'retry');
        await env.sleep(outcome.delayMs);
        if (!env.live(ch)) return 'stale';
        continue;
      }
      if (await settle(env, ch, msg, outcome, log)) {
        span.setAttribute('aq.outcome', outcome.kind);
        if (outcome.kind === 'dead-letter') span.setStatus({ code: SpanStatusCode.ERROR, message: `${outcome.code}: ${outcome.reason}` });
        return outcome.kind;
      }
      await env.sleep(1_000); // the broker would not take the copy: keep the delivery and try again
      if (!env.live(ch)) return 'stale';
    }
  } finally {
    if (holding) env.held.set(holding, (env.held.get(holding) ?? 1) - 1);
  }
}

async function runHandler(env: DeliveryEnv, msg: ConsumeMessage, log: Logger): Promise<Failure | undefined> {
  const started = process.hrtime.bigint();
  try {
    await env.handler(msg, log);
    return undefined;
  } catch (err) {
    return classify(err);
  } finally {
    handlerDuration.observe({ queue: env.queue }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/** Carries out a final outcome; false when a copy it needed (dead letter, park) was not confirmed. */
async function settle(env: DeliveryEnv, ch: Settle, msg: ConsumeMessage, o: Exclude<Outcome, { kind: 'hold' }>, log: Logger): Promise<boolean> {
  try {
    switch (o.kind) {
      case 'ack':
        break;
      case 'dead-letter':
        await env.publisher.deadLetter(msg, env.queue, o.code, o.reason);
        log.warn({ code: o.code, reason: o.reason }, 'message dead-lettered');
        break;
      case 'park':
        await env.publisher.park(msg, env.queue, o.failures, o.scope);
        break;
      case 'requeue':
        await env.sleep(o.delayMs);
        break;
      default: {
        const _exhaustive: never = o;
        throw new Error(`unknown outcome ${JSON.stringify(_exhaustive)}`);
      }
    }
  } catch (err) {
    log.warn({ err, outcome: o.kind }, 'could not settle the delivery yet');
    return false;
  }
  count(env.queue, o.kind === 'dead-letter' ? 'dead_letter' : o.kind);
  if (mutated('ack-before-handling')) return true; // acked already
  if (!env.live(ch)) return true; // the channel died meanwhile: the broker redelivers, handlers are idempotent
  try {
    if (o.kind === 'requeue' && o.how === 'reject') ch.reject(msg, true);
    else if (o.kind === 'requeue') ch.nack(msg, false, true);
    else ch.ack(msg);
  } catch (err) {
    log.debug({ err }, 'stale delivery dropped');
  }
  return true;
}

const count = (queue: string, outcome: string) => messagesTotal.inc({ queue, outcome });
