import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../log';
import { consumerActive } from '../metrics';
import { declareInputQueue, type TopologySettings } from '../topology';
import { runDelivery, type Handler, type Settle } from './consumer';
import type { Publisher } from './publisher';

export type SubscriptionSettings = Readonly<{ deliveryLimit: number; outageHold: number; topology: TopologySettings }>;

const RESUBSCRIBE_MS = [500, 1_000, 2_000, 5_000];
/**
 * A subscribe step (channel, prefetch, declare, consume) that has not answered by then is given up:
 * its channel is closed and a new one tried. After a RabbitMQ node dies, a step sent to a survivor
 * can wait on the broker for ~30 s although the queue has a new leader within a second (measured in
 * the cluster world, docs/RELIABILITY.md); a fresh channel asks again.
 */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

/**
 * One queue's consumer across reconnects: its own channel and prefetch, its deliveries in flight,
 * and its way back after the broker cancels it (queue deleted, moved, its node lost) or its channel
 * closes: declare the queue again and subscribe with backoff.
 *
 * On probation (restarted after a crash) it takes one message at a time until it has acked a
 * prefetch window: if a poison message kills it again, only the poison is charged a delivery, not
 * every neighbour that happened to be in flight with it.
 */
export class Subscription {
  active = false;
  readonly inFlight = new Set<Promise<unknown>>();
  private channel?: Channel;
  private readonly closed = new WeakSet<Channel>();
  private tag?: string;
  private model?: ChannelModel;
  private stopping = false;
  private acked = 0;
  private timer?: NodeJS.Timeout;
  private readonly held = new Map<string, number>();

  constructor(
    readonly queue: string,
    private readonly handler: Handler,
    private readonly prefetch: number,
    private probation: boolean,
    private readonly pub: Publisher,
    private readonly log: Logger,
    private readonly s: SubscriptionSettings,
  ) {
    this.setActive(false);
  }

  /** After every (re)connect: a fresh channel on the new connection. */
  async start(model: ChannelModel | undefined): Promise<void> {
    this.model = model;
    this.channel = undefined;
    clearTimeout(this.timer);
    if (!model) return this.setActive(false);
    await this.subscribe(model, 0);
  }

  /** No new deliveries; those in flight finish and settle on their channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.channel && this.tag) await this.channel.cancel(this.tag).catch(() => undefined);
  }

  private async subscribe(m: ChannelModel, attempt: number): Promise<void> {
    if (this.stopping || m !== this.model) return;
    const t0 = Date.now();
    let timedOut = false;
    const step = (async () => {
      const ch = this.channel && !this.closed.has(this.channel) ? this.channel : await this.openChannel(m);
      if (timedOut) throw new Error('given up');
      this.channel = ch;
      const ok = await ch.consume(this.queue, (msg) => (msg ? this.deliver(ch, msg) : this.later(m, 'consumer cancelled by the broker')));
      return { ch, tag: ok.consumerTag };
    })();
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([step, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${SUBSCRIBE_TIMEOUT_MS} ms`)), SUBSCRIBE_TIMEOUT_MS)))]);
      this.tag = r.tag;
      this.setActive(true);
      if (attempt > 0 || Date.now() - t0 > 1_000) this.log.info({ queue: this.queue, attempt, ms: Date.now() - t0 }, 'consuming again');
    } catch (err) {
      timedOut = true;
      // A step that answers late must not leave a consumer behind: its channel goes.
      step
        .then(
          ({ ch }) => ch.close(),
          () => undefined,
        )
        .catch(() => undefined);
      const stale = this.channel;
      this.channel = undefined;
      if (stale && !this.closed.has(stale)) stale.close().catch(() => undefined);
      this.later(m, 'cannot consume yet', err, attempt + 1);
    } finally {
      clearTimeout(timer);
    }
  }

  private later(m: ChannelModel, why: string, err?: unknown, attempt = 0): void {
    this.setActive(false);
    if (this.stopping || m !== this.model) return;
    this.log.warn({ err, queue: this.queue, attempt }, `${why}, subscribing again`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.subscribe(m, attempt), RESUBSCRIBE_MS[Math.min(attempt, RESUBSCRIBE_MS.length - 1)]);
  }

  private async openChannel(m: ChannelModel): Promise<Channel> {
    const ch = await m.createChannel();
    ch.on('error', (err) => this.log.warn({ err, queue: this.queue }, 'consumer channel error'));
    ch.on('close', () => {
      this.closed.add(ch);
      if (this.channel === ch) this.later(m, 'consumer channel closed');
    });
    await ch.prefetch(this.probation ? 1 : this.prefetch);
    // The queue may have been deleted under us: bring it back as the topology says.
    await declareInputQueue(ch, this.queue, this.s.topology);
    return ch;
  }

  private deliver(ch: Channel, msg: ConsumeMessage): void {
    const env = {
      queue: this.queue,
      handler: this.handler,
      publisher: this.pub,
      log: this.log,
      deliveryLimit: this.s.deliveryLimit,
      outageHold: this.s.outageHold,
      stopping: () => this.stopping,
      held: this.held,
      live: (x: Settle) => x === this.channel && !this.closed.has(ch),
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    };
    const p = runDelivery(env, ch, msg).then((kind) => {
      if (kind === 'ack' && this.probation && ++this.acked >= this.prefetch) this.endProbation(ch);
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private endProbation(ch: Channel): void {
    this.probation = false;
    ch.prefetch(this.prefetch).catch((err: unknown) => this.log.warn({ err, queue: this.queue }, 'could not raise the prefetch after probation'));
    this.log.info({ queue: this.queue, prefetch: this.prefetch }, 'probation over, full prefetch');
  }

  private setActive(active: boolean): void {
    this.active = active;
    consumerActive.set({ queue: this.queue }, active ? 1 : 0);
  }
}
