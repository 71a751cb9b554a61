/**
 * What the books checker reads. A History is what the test did and saw (its own ledger: inputs,
 * replies with its own clock around them, events from its observer queue, the catalog it loaded);
 * a Snapshot is what the service left in the shards, the global database and Redis.
 */

/** A recharge the test sent (at least once): it must end as exactly one order or one rejection. */
export type RechargeInput = Readonly<{ userId: string; outBusinessNo: string; sku: number }>;

/** A reply as a caller got it (late replies to timed-out attempts included). */
export type CallReply = Readonly<{ code: string; orderId?: string }>;

/**
 * One logical partake of a caller (retries included): every reply it got, in order; `sentAt` =
 * the test's clock when the first attempt went out, `okAt` = when the first `0000` arrived.
 */
export type PartakeInput = Readonly<{ userId: string; activityId: number; replies: readonly CallReply[]; sentAt?: number; okAt?: number }>;

/** One `raffle-order.used` the test sent (retried after timeouts): every reply, and how many attempts went out. */
export type UseInput = Readonly<{ userId: string; orderId: string; replies: readonly CallReply[]; attempts: number }>;

/** One `raffle-order.cancel` the test sent (retried after timeouts): every reply. */
export type CancelInput = Readonly<{ userId: string; orderId: string; replies: readonly CallReply[] }>;

/** An event as the test's durable observer queue saw it. */
export type SeenEvent = Readonly<{ key: string; messageId: string; data: Record<string, any> }>;

/** A message the test expects in `activity.dead-letter` (poison), by AMQP message id. */
export type DeadLetterInput = Readonly<{ messageId: string }>;

export type DeadLetter = Readonly<{ messageId?: string; headers: Record<string, any> }>;

/** The catalog file the test loaded (`npm run catalog -- load`), as far as the books need it. */
export type CatalogFile = Readonly<{
  activities: ReadonlyArray<{ activityId: number; state: string; beginTime: string; endTime: string }>;
  skus: ReadonlyArray<{ sku: number; activityId: number; stockCount: number }>;
}>;

export type TaskRow = { shard: number; id: string; topic: string; message_id: string; state: string; message: any; user_id: string };

/** What the test did and saw. Only `events`, `deadLetters` and `catalog` are required. */
export type History = Readonly<{
  catalog: CatalogFile;
  recharges?: readonly RechargeInput[];
  partakes?: readonly PartakeInput[];
  uses?: readonly UseInput[];
  cancels?: readonly CancelInput[];
  poison?: readonly DeadLetterInput[];
  events: readonly SeenEvent[];
  deadLetters: readonly DeadLetter[];
  /** Partake calls that must have succeeded (a `0000` whose order is in the database): the load's plan. */
  expectPartakes?: number;
  /** Raffle orders may end cancelled (expiry, cancel) when a `raffle-order.cancelled` event says so. */
  cancelsAllowed?: boolean;
  /** A `dead` task this returns true for was meant to die; any other is a violation. */
  deadTaskAllowed?: (task: TaskRow) => boolean;
}>;

/** The older name of History. */
export type Inputs = History;

export type OrderRow = {
  shard: number;
  suffix: string;
  user_id: string;
  sku: string;
  activity_id: string;
  order_id: string;
  order_time: Date;
  total_count: number;
  day_count: number;
  month_count: number;
  out_business_no: string;
};
export type RejectionRow = { shard: number; suffix: string; user_id: string; sku: string; out_business_no: string; code: string; message_id: string; create_time: Date };
export type RaffleRow = { shard: number; suffix: string; user_id: string; activity_id: string; order_id: string; order_time: Date; order_state: string };
export type AccountRow = {
  shard: number;
  user_id: string;
  activity_id: string;
  total_count: number;
  total_count_surplus: number;
  day_count: number;
  day_count_surplus: number;
  month_count: number;
  month_count_surplus: number;
};
export type DayRow = { shard: number; user_id: string; activity_id: string; day: string; day_count: number; day_count_surplus: number };
export type MonthRow = { shard: number; user_id: string; activity_id: string; month: string; month_count: number; month_count_surplus: number };
export type SkuRow = { sku: number; stock_count: number; stock_count_surplus: number };

export type Snapshot = {
  orders: OrderRow[];
  rejections: RejectionRow[];
  raffle: RaffleRow[];
  accounts: AccountRow[];
  days: DayRow[];
  months: MonthRow[];
  tasks: TaskRow[];
  skus: SkuRow[];
  /** Live Redis counters of the SKUs (a missing key is absent from the map). */
  redisStock: Map<number, number>;
};

/** The world's shape the checker needs (a Config has it). */
export type Layout = Readonly<{ shards: number; tables: number; timeZone: string }>;

export type Books = {
  inputs: number;
  /** Inputs that ended in an effect (a use: its order in the state its replies said) or a recorded rejection (a dead letter for poison). */
  effects: number;
  lost: number;
  doubled: number;
  /** Each starts with the rule's name in brackets, e.g. `[false-sold-out] …`. */
  violations: string[];
};

/** Collects findings: at most a dozen listed per rule, the rest counted. */
export class Findings {
  readonly books: Books = { inputs: 0, effects: 0, lost: 0, doubled: 0, violations: [] };
  private readonly counted = new Map<string, number>();

  add(rule: string, text: string, o: { lost?: number; doubled?: number } = {}): void {
    this.books.lost += o.lost ?? 0;
    this.books.doubled += o.doubled ?? 0;
    const n = (this.counted.get(rule) ?? 0) + 1;
    this.counted.set(rule, n);
    if (n <= 12) this.books.violations.push(`[${rule}] ${text}`);
  }

  done(): Books {
    for (const [rule, n] of this.counted) if (n > 12) this.books.violations.push(`[${rule}] … ${n - 12} more`);
    return this.books;
  }
}

export const key = (...parts: unknown[]) => parts.map(String).join('\u0000');
export const shown = (k: string) => k.split('\u0000').join('/');

/** Groups `items` by `by` (insertion order kept). */
export function groupBy<T>(items: readonly T[], by: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = by(t);
    const list = m.get(k);
    if (list) list.push(t);
    else m.set(k, [t]);
  }
  return m;
}
