import { idProblem } from './ids';

/** The catalog file of contract §4, validated as a whole: every problem is named, none is applied. */

export type ActivityState = 'create' | 'open' | 'close';

export type Activity = Readonly<{
  activityId: number;
  name: string;
  desc: string;
  strategyId: number;
  beginTime: Date;
  endTime: Date;
  state: ActivityState;
  /** Unused raffle orders older than this are cancelled and refunded; absent, they never expire. */
  raffleOrderTtlSeconds?: number;
}>;
export type CountPackage = Readonly<{ activityCountId: number; totalCount: number; dayCount: number; monthCount: number }>;
/** `stockCount` -1 is unlimited. */
export type Sku = Readonly<{ sku: number; activityId: number; activityCountId: number; stockCount: number; productAmount: string }>;
export type BehaviorRebate = Readonly<{ behavior: string; sku: number; desc: string; state: 'open' | 'close' }>;

export type Catalog = Readonly<{
  activities: readonly Activity[];
  counts: readonly CountPackage[];
  skus: readonly Sku[];
  behaviorRebates: readonly BehaviorRebate[];
}>;

/** Ids already in the database, which a file may refer to without repeating them. */
export type KnownIds = Readonly<{ activityIds: ReadonlySet<number>; activityCountIds: ReadonlySet<number>; skus: ReadonlySet<number> }>;

export type Validation = { ok: true; catalog: Catalog } | { ok: false; problems: string[] };

const NONE: KnownIds = { activityIds: new Set(), activityCountIds: new Set(), skus: new Set() };

const SECTIONS = ['activities', 'counts', 'skus', 'behaviorRebates'] as const;
type Lists = Readonly<Record<(typeof SECTIONS)[number], unknown[]>>;
/** Ids the file declares, even on entries with other problems, so one bad field does not cascade. */
type Declared = Readonly<{ activityIds: ReadonlySet<number>; countIds: ReadonlySet<number>; skus: ReadonlySet<number> }>;

export function validateCatalog(input: unknown, known: KnownIds = NONE): Validation {
  const problems: string[] = [];
  if (!isObject(input)) return { ok: false, problems: ['the file is not a JSON object'] };
  for (const k of Object.keys(input)) {
    if (!(SECTIONS as readonly string[]).includes(k)) problems.push(`unknown top-level key ${JSON.stringify(k)}`);
  }
  const lists = Object.fromEntries(
    SECTIONS.map((key) => {
      const v = input[key];
      if (v !== undefined && !Array.isArray(v)) problems.push(`${key} must be an array`);
      return [key, Array.isArray(v) ? v : []];
    }),
  ) as unknown as Lists;
  const r = new Reader(problems);
  const ids = (l: unknown[], idKey: string) => new Set(l.flatMap((x) => (isObject(x) && typeof x[idKey] === 'number' ? [x[idKey] as number] : [])));
  const declared: Declared = {
    activityIds: ids(lists.activities, 'activityId'),
    countIds: ids(lists.counts, 'activityCountId'),
    skus: new Set(lists.skus.flatMap((x) => (isObject(x) && (typeof x.sku === 'number' || typeof x.sku === 'string') ? [Number(x.sku)] : []))),
  };
  const catalog: Catalog = {
    activities: readActivities(lists.activities, r, problems),
    counts: readCounts(lists.counts, r, problems),
    skus: readSkus(lists.skus, r, problems, known, declared),
    behaviorRebates: readRebates(lists.behaviorRebates, r, problems, known, declared),
  };
  return problems.length ? { ok: false, problems } : { ok: true, catalog };
}

function readActivities(list: unknown[], r: Reader, problems: string[]): Activity[] {
  const activities: Activity[] = [];
  for (const [i, a] of list.entries()) {
    const at = `activities[${i}]`;
    if (!isObject(a)) {
      problems.push(`${at} must be an object`);
      continue;
    }
    const activityId = r.id(a, 'activityId', at);
    const name = r.text(a, 'name', at, 64, true);
    const desc = r.text(a, 'desc', at, 128, false);
    const strategyId = r.id(a, 'strategyId', at);
    const beginTime = r.time(a, 'beginTime', at);
    const endTime = r.time(a, 'endTime', at);
    const state = r.oneOf(a, 'state', at, ['create', 'open', 'close'] as const);
    const ttl = a.raffleOrderTtlSeconds === undefined || a.raffleOrderTtlSeconds === null ? undefined : r.id(a, 'raffleOrderTtlSeconds', at, 2_147_483_647);
    if (beginTime && endTime && beginTime >= endTime) problems.push(`${at}: beginTime must be before endTime`);
    if (activityId !== undefined && activities.some((x) => x.activityId === activityId)) problems.push(`${at}: activityId ${activityId} appears twice`);
    if (activityId !== undefined && name !== undefined && strategyId !== undefined && beginTime && endTime && state) {
      activities.push({ activityId, name, desc: desc ?? '', strategyId, beginTime, endTime, state, ...(ttl === undefined ? {} : { raffleOrderTtlSeconds: ttl }) });
    }
  }
  return activities;
}

function readCounts(list: unknown[], r: Reader, problems: string[]): CountPackage[] {
  const counts: CountPackage[] = [];
  for (const [i, c] of list.entries()) {
    const at = `counts[${i}]`;
    if (!isObject(c)) {
      problems.push(`${at} must be an object`);
      continue;
    }
    const activityCountId = r.id(c, 'activityCountId', at);
    const totalCount = r.whole(c, 'totalCount', at, 0);
    const dayCount = r.whole(c, 'dayCount', at, 0);
    const monthCount = r.whole(c, 'monthCount', at, 0);
    if (activityCountId !== undefined && counts.some((x) => x.activityCountId === activityCountId)) problems.push(`${at}: activityCountId ${activityCountId} appears twice`);
    if (activityCountId !== undefined && totalCount !== undefined && dayCount !== undefined && monthCount !== undefined) {
      counts.push({ activityCountId, totalCount, dayCount, monthCount });
    }
  }
  return counts;
}

function readSkus(list: unknown[], r: Reader, problems: string[], known: KnownIds, declared: Declared): Sku[] {
  const skus: Sku[] = [];
  for (const [i, s] of list.entries()) {
    const at = `skus[${i}]`;
    if (!isObject(s)) {
      problems.push(`${at} must be an object`);
      continue;
    }
    const sku = r.id(s, 'sku', at);
    const activityId = r.id(s, 'activityId', at);
    const activityCountId = r.id(s, 'activityCountId', at);
    const stockCount = r.whole(s, 'stockCount', at, -1);
    const productAmount = r.amount(s, 'productAmount', at);
    if (activityId !== undefined && !known.activityIds.has(activityId) && !declared.activityIds.has(activityId)) {
      problems.push(`${at}: activityId ${activityId} is neither in the file nor in the database`);
    }
    if (activityCountId !== undefined && !known.activityCountIds.has(activityCountId) && !declared.countIds.has(activityCountId)) {
      problems.push(`${at}: activityCountId ${activityCountId} is neither in the file nor in the database`);
    }
    if (sku !== undefined && skus.some((x) => x.sku === sku)) problems.push(`${at}: sku ${sku} appears twice`);
    if (sku !== undefined && activityId !== undefined && activityCountId !== undefined && stockCount !== undefined && productAmount !== undefined) {
      skus.push({ sku, activityId, activityCountId, stockCount, productAmount });
    }
  }
  return skus;
}

function readRebates(list: unknown[], r: Reader, problems: string[], known: KnownIds, declared: Declared): BehaviorRebate[] {
  const behaviorRebates: BehaviorRebate[] = [];
  for (const [i, b] of list.entries()) {
    const at = `behaviorRebates[${i}]`;
    if (!isObject(b)) {
      problems.push(`${at} must be an object`);
      continue;
    }
    const behavior = r.identifier(b, 'behavior', at);
    const sku = r.id(b, 'sku', at);
    const desc = r.text(b, 'desc', at, 128, false);
    const state = r.oneOf(b, 'state', at, ['open', 'close'] as const);
    if (sku !== undefined && !known.skus.has(sku) && !declared.skus.has(sku)) problems.push(`${at}: sku ${sku} is neither in the file nor in the database`);
    if (behavior !== undefined && sku !== undefined && behaviorRebates.some((x) => x.behavior === behavior && x.sku === sku)) {
      problems.push(`${at}: behavior ${JSON.stringify(behavior)} with sku ${sku} appears twice`);
    }
    if (behavior !== undefined && sku !== undefined && state) behaviorRebates.push({ behavior, sku, desc: desc ?? '', state });
  }
  return behaviorRebates;
}

class Reader {
  constructor(private readonly problems: string[]) {}

  id(o: Record<string, unknown>, k: string, at: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = o[k];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= max) return v;
    this.problems.push(`${at}.${k} must be a positive whole number${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${show(v)}`);
    return undefined;
  }

  /** A caller-facing identifier (a behavior): the same rule as on the queues (domain/ids.ts). */
  identifier(o: Record<string, unknown>, k: string, at: string): string | undefined {
    const problem = idProblem(o[k]);
    if (problem === undefined) return o[k] as string;
    this.problems.push(`${at}.${k} ${problem}, got ${show(o[k])}`);
    return undefined;
  }

  whole(o: Record<string, unknown>, k: string, at: string, min: number): number | undefined {
    const v = o[k];
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 2_147_483_647) return v;
    this.problems.push(`${at}.${k} must be a whole number from ${min} to 2147483647, got ${show(v)}`);
    return undefined;
  }

  text(o: Record<string, unknown>, k: string, at: string, max: number, required: boolean): string | undefined {
    const v = o[k];
    if (v === undefined && !required) return undefined;
    if (typeof v === 'string' && (v.trim() || !required) && v.length <= max) return v;
    this.problems.push(`${at}.${k} must be ${required ? 'a non-empty' : 'a'} string of at most ${max} characters, got ${show(v)}`);
    return undefined;
  }

  time(o: Record<string, unknown>, k: string, at: string): Date | undefined {
    const v = o[k];
    const d = typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) ? new Date(v) : undefined;
    if (d && !Number.isNaN(d.getTime())) return d;
    this.problems.push(`${at}.${k} must be an ISO 8601 date-time, got ${show(v)}`);
    return undefined;
  }

  oneOf<T extends string>(o: Record<string, unknown>, k: string, at: string, values: readonly T[]): T | undefined {
    const v = o[k];
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    this.problems.push(`${at}.${k} must be one of ${values.join(', ')}, got ${show(v)}`);
    return undefined;
  }

  /** A money amount as a decimal string ("12.50") or number, 0 or more, at most two decimals. */
  amount(o: Record<string, unknown>, k: string, at: string): string | undefined {
    const v = o[k] ?? '0';
    const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
    if (typeof s === 'string' && /^\d{1,10}(\.\d{1,2})?$/.test(s)) return s;
    this.problems.push(`${at}.${k} must be an amount like "12.50", got ${show(v)}`);
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
