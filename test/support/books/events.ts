import { groupBy, key, shown, type Findings, type History, type Snapshot, type TaskRow } from './types';

/** The effect an event or task stands for: one message id per effect (the same id twice is at-least-once, allowed). */
function effectOf(topic: string, d: Record<string, any> | undefined): string | undefined {
  if (topic === 'recharge.completed' || topic === 'partake.created' || topic === 'raffle-order.cancelled') return key(topic, d?.orderId);
  if (topic === 'recharge.rejected') return key(topic, d?.userId, d?.outBusinessNo);
  return undefined;
}

/** Outbox tasks and observed events: each effect has one task and one message id, each completed task was seen. */
export function checkEvents(f: Findings, h: History, s: Snapshot): void {
  const idsPer = new Map<string, Set<string>>();
  const seenIds = new Set<string>();
  for (const e of h.events) {
    seenIds.add(e.messageId);
    const k = effectOf(e.key, e.data);
    if (k) idsPer.set(k, (idsPer.get(k) ?? new Set()).add(e.messageId));
  }
  for (const [k, ids] of idsPer) if (ids.size > 1) f.add('double-event', `${shown(k)} published under ${ids.size} message ids`, { doubled: ids.size - 1 });
  const tasksPer = groupBy(
    s.tasks.filter((t) => effectOf(t.topic, t.message?.data)),
    (t) => effectOf(t.topic, t.message?.data)!,
  );
  for (const t of s.tasks) checkTask(f, h, t, seenIds);
  for (const [k, ts] of tasksPer) if (ts.length > 1) f.add('double-task', `${shown(k)} has ${ts.length} outbox tasks`, { doubled: ts.length - 1 });
  for (const o of s.orders) if (!tasksPer.has(key('recharge.completed', o.order_id))) f.add('no-task', `order ${o.order_id} has no recharge.completed task`, { lost: 1 });
  for (const r of s.rejections)
    if (!tasksPer.has(key('recharge.rejected', r.user_id, r.out_business_no))) f.add('no-task', `rejection of ${r.user_id}/${r.out_business_no} has no recharge.rejected task`, { lost: 1 });
  for (const r of s.raffle) {
    if (!tasksPer.has(key('partake.created', r.order_id))) f.add('no-task', `raffle order ${r.order_id} has no partake.created task`, { lost: 1 });
    if (r.order_state === 'cancel' && !tasksPer.has(key('raffle-order.cancelled', r.order_id)))
      f.add('no-task', `cancelled raffle order ${r.order_id} has no raffle-order.cancelled task`, { lost: 1 });
  }
}

function checkTask(f: Findings, h: History, t: TaskRow, seenIds: Set<string>): void {
  const who = `task ${t.shard}/${t.id} (${t.topic} ${t.message_id})`;
  if (t.message?.id !== undefined && t.message.id !== t.message_id) f.add('envelope-id', `${who}: envelope id ${t.message.id} ≠ message_id`);
  if (t.state === 'create' || t.state === 'fail') f.add('task-pending', `${who} still ${t.state} once idle`);
  if (t.state === 'dead' && !h.deadTaskAllowed?.(t)) f.add('task-dead', `${who} is dead`);
  if (t.state === 'completed' && !seenIds.has(t.message_id)) f.add('lost-event', `${who} completed but its event never arrived`, { lost: 1 });
}

/** The poison is in `activity.dead-letter` with a reason; nothing else is. */
export function checkDeadLetters(f: Findings, h: History): void {
  for (const p of h.poison ?? []) {
    if (h.deadLetters.some((x) => x.messageId === p.messageId)) f.books.effects++;
    else f.add('poison-missing', `poison message ${p.messageId} is not in activity.dead-letter`, { lost: 1 });
  }
  const poison = new Set((h.poison ?? []).map((p) => p.messageId));
  const innocent = h.deadLetters.filter((d) => !d.messageId || !poison.has(d.messageId));
  for (const d of innocent) f.add('dead-letter', `message ${d.messageId} dead-lettered: ${String(d.headers?.['x-error'] ?? JSON.stringify(d.headers?.['x-death']?.[0]?.reason ?? ''))}`);
}
