import { z } from 'zod';
import { DEAD_LETTER_QUEUE, EVENTS_EXCHANGE } from '../topology';
import { EVENT_SPECS, QUEUE_SPECS, eventBody, inboundBody, type EventSpec, type QueueSpec } from './index';
import { RESULT_CODES, codeSchema, type ResultCode } from './replies';

/** The generated documents of docs/contract: JSON Schema files and the AsyncAPI 3 document. */

type Json = Record<string, unknown>;

/** Draft-07, the dialect AsyncAPI 3 schemas and most validators (ajv, Python jsonschema) read. */
const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Json => z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'throw', reused: 'ref' }) as Json;

const requestTitle = (s: QueueSpec) => `${pascal(s.key)}Request`;
const replyTitle = (s: QueueSpec) => `${pascal(s.key)}Reply`;
const eventTitle = (s: EventSpec) => `${pascal(s.key)}Event`;
const pascal = (k: string) => `${k[0]!.toUpperCase()}${k.slice(1)}`;

/** Each document as its path under docs/contract/schemas and its schema. */
export function schemaFiles(): Map<string, Json> {
  const files = new Map<string, Json>();
  for (const s of QUEUE_SPECS) {
    files.set(`requests/${s.queue}.json`, {
      ...jsonSchema(inboundBody(requestTitle(s), s.payload), 'input'),
      description: `${s.queue}: ${s.summary}. The bare payload or the envelope {id, timestamp, data}.`,
    });
    if (s.replySchema) files.set(`replies/${s.queue}.json`, { ...jsonSchema(s.replySchema, 'output'), description: `The reply to ${s.queue}, sent to replyTo with the request's correlationId.` });
  }
  for (const e of EVENT_SPECS) files.set(`events/${e.topic}.json`, { ...jsonSchema(eventBody(e), 'output'), description: `${e.topic} on ${EVENTS_EXCHANGE}: ${e.summary}.` });
  files.set('result-code.json', { ...jsonSchema(codeSchema(Object.keys(RESULT_CODES) as ResultCode[]), 'output'), title: 'ResultCode' });
  return files;
}

const ref = (to: string) => ({ $ref: to });
const withoutDialect = ({ $schema: _s, ...rest }: Json): Json => rest;
const queueBinding = (name: string) => ({
  amqp: { is: 'queue', queue: { name, durable: true, exclusive: false, autoDelete: false }, bindingVersion: '0.3.0' },
});
const QUEUE_ARGUMENTS = { 'x-queue-type': 'quorum', 'x-delivery-limit': 'DELIVERY_LIMIT (default 10)', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': DEAD_LETTER_QUEUE };
const PUBLISH = { amqp: { deliveryMode: 2, mandatory: true, bindingVersion: '0.3.0' } };
/** W3C trace context in the AMQP headers (optional on requests; set by the service on replies and events when the cause had it). */
const TRACE_HEADERS = {
  headers: {
    type: 'object',
    properties: {
      traceparent: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$', description: 'W3C Trace Context traceparent: the sender span; the receiver continues its trace' },
      tracestate: { type: 'string', description: 'W3C Trace Context tracestate, vendor data passed along' },
    },
  },
};
const JSON_MESSAGE = { contentType: 'application/json' };

type Parts = { channels: Json; operations: Json; messages: Json; schemas: Json };

/** A queue's channel, its request message, its operation and, for request/reply queues, the reply channel. */
function addQueue(p: Parts, s: QueueSpec): void {
  const msgName = requestTitle(s);
  p.schemas[msgName] = withoutDialect(jsonSchema(inboundBody(msgName, s.payload), 'input'));
  p.messages[msgName] = {
    name: msgName,
    title: `${s.queue} request`,
    summary: s.summary,
    ...JSON_MESSAGE,
    ...TRACE_HEADERS,
    ...(s.reply === 'none' ? {} : { correlationId: { description: 'the AMQP correlationId property, copied to the reply', location: '$message.header#/correlationId' } }),
    payload: ref(`#/components/schemas/${msgName}`),
    bindings: { amqp: { messageType: s.queue, bindingVersion: '0.3.0' } },
  };
  p.channels[s.key] = {
    address: s.queue,
    title: s.queue,
    description: `${s.summary}. Durable quorum queue; publish to the default exchange with routing key = the queue name${s.boundTo ? `; also bound to ${EVENTS_EXCHANGE} with ${s.boundTo.join(', ')}` : ''}. A message that cannot be processed goes to ${DEAD_LETTER_QUEUE}.`,
    messages: { [msgName]: ref(`#/components/messages/${msgName}`) },
    bindings: queueBinding(s.queue),
    'x-queue-arguments': QUEUE_ARGUMENTS,
    ...(s.boundTo ? { 'x-bound-to': s.boundTo.map((k) => ({ exchange: EVENTS_EXCHANGE, routingKey: k })) } : {}),
  };
  const op: Json = {
    action: 'receive',
    channel: ref(`#/channels/${s.key}`),
    summary: s.summary,
    messages: [ref(`#/channels/${s.key}/messages/${msgName}`)],
    bindings: PUBLISH,
    'x-reply': s.reply,
    ...(s.emits.length ? { 'x-emits': s.emits } : {}),
  };
  if (s.replySchema) {
    const replyName = replyTitle(s);
    p.schemas[replyName] = withoutDialect(jsonSchema(s.replySchema, 'output'));
    p.messages[replyName] = {
      name: replyName,
      title: `${s.queue} reply`,
      ...JSON_MESSAGE,
      ...TRACE_HEADERS,
      correlationId: { location: '$message.header#/correlationId' },
      payload: ref(`#/components/schemas/${replyName}`),
    };
    p.channels[`${s.key}Reply`] = {
      address: null,
      title: `${s.queue} reply`,
      description: `The caller's replyTo queue (a queue of its own, or Direct Reply-to amq.rabbitmq.reply-to). ${s.reply === 'required' ? 'replyTo is required: a request without it is dead-lettered (NO_REPLY_TO).' : 'A reply is sent only when replyTo is set.'}`,
      messages: { [replyName]: ref(`#/components/messages/${replyName}`) },
    };
    op.reply = { address: { location: '$message.header#/replyTo' }, channel: ref(`#/channels/${s.key}Reply`), messages: [ref(`#/channels/${s.key}Reply/messages/${replyName}`)] };
  }
  p.operations[`receive${pascal(s.key)}`] = op;
}

/** An event: its routing-key channel on the topic exchange, its envelope message, the service's send operation. */
function addEvent(p: Parts, e: EventSpec): void {
  const name = eventTitle(e);
  p.schemas[name] = withoutDialect(jsonSchema(eventBody(e), 'output'));
  p.messages[name] = {
    name,
    title: e.topic,
    summary: e.summary,
    ...JSON_MESSAGE,
    ...TRACE_HEADERS,
    payload: ref(`#/components/schemas/${name}`),
    bindings: { amqp: { messageType: e.topic, bindingVersion: '0.3.0' } },
    description: 'Persistent; AMQP messageId = envelope id, type = the routing key, timestamp set. Published at least once: deduplicate by messageId.',
  };
  p.channels[e.key] = {
    address: e.topic,
    title: e.topic,
    description: `${e.summary}. Routing key ${e.topic} on the topic exchange ${EVENTS_EXCHANGE}; bind a queue of your own to receive it.`,
    messages: { [name]: ref(`#/components/messages/${name}`) },
    bindings: { amqp: { is: 'routingKey', exchange: { name: EVENTS_EXCHANGE, type: 'topic', durable: true, autoDelete: false }, bindingVersion: '0.3.0' } },
  };
  p.operations[`send${pascal(e.key)}`] = { action: 'send', channel: ref(`#/channels/${e.key}`), summary: e.summary, messages: [ref(`#/channels/${e.key}/messages/${name}`)], bindings: PUBLISH };
}

function addDeadLetter(p: Parts): void {
  p.messages.DeadLetter = {
    name: 'DeadLetter',
    title: DEAD_LETTER_QUEUE,
    summary: 'A message that could not be processed, unchanged, with why in its headers',
    headers: {
      type: 'object',
      properties: {
        'x-error': { type: 'string', description: 'CODE: reason, e.g. "INVALID_MESSAGE: userId is over 128 characters" (codes INVALID_JSON, INVALID_MESSAGE, NO_REPLY_TO, HANDLER_FAILED)' },
        'x-original-queue': { type: 'string', description: 'the queue it was taken from' },
        'x-death': { type: 'array', description: "the broker's death records" },
      },
    },
    payload: { description: 'the original body' },
  };
  p.channels.deadLetter = {
    address: DEAD_LETTER_QUEUE,
    title: DEAD_LETTER_QUEUE,
    description: 'Messages that cannot be processed; `npm run dead-letter -- list / requeue` reads and re-sends them.',
    messages: { DeadLetter: ref('#/components/messages/DeadLetter') },
    bindings: queueBinding(DEAD_LETTER_QUEUE),
  };
  p.operations.sendDeadLetter = { action: 'send', channel: ref('#/channels/deadLetter'), messages: [ref('#/channels/deadLetter/messages/DeadLetter')] };
}

/** The AsyncAPI 3.0 document: every queue, the events exchange and its routing keys, payloads, replies and codes. */
export function asyncApi(version: string): Json {
  const p: Parts = { channels: {}, operations: {}, messages: {}, schemas: { ResultCode: withoutDialect(jsonSchema(codeSchema(Object.keys(RESULT_CODES) as ResultCode[]), 'output')) } };
  for (const s of QUEUE_SPECS) addQueue(p, s);
  for (const e of EVENT_SPECS) addEvent(p, e);
  addDeadLetter(p);
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'activity-quota',
      version,
      description: `Raffle chances (activity quota) as a message-driven pipeline. Bodies are UTF-8 JSON. Inbound: the bare payload or the envelope {id, timestamp, data}. Replies: {code, info, data?}; codes:\n${Object.entries(
        RESULT_CODES,
      )
        .map(([c, w]) => `- ${c}: ${w}`)
        .join('\n')}\nGenerated from infra/contract by \`npm run contract -- generate\`; do not edit.`,
    },
    defaultContentType: 'application/json',
    servers: { local: { host: '127.0.0.1:5672', protocol: 'amqp', protocolVersion: '0.9.1', pathname: '/', description: 'AMQP_URL; a vhost in the URL isolates a deployment' } },
    channels: p.channels,
    operations: p.operations,
    components: { schemas: p.schemas, messages: p.messages },
  };
}
