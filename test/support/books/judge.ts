import { catalogFacts } from './catalog';
import { checkDeadLetters, checkEvents } from './events';
import { checkPartakes, checkUses } from './partakes';
import { checkAccounts, checkPeriods } from './periods';
import { checkRecharges, checkRejections, checkStock } from './recharges';
import { Findings, type Books, type History, type Layout, type Snapshot } from './types';

/**
 * The books of a run, pure: what the test did and saw (History) against what the service left
 * (Snapshot). Every finding names its rule: `[rule] text`.
 */
export function judge(h: History, s: Snapshot, layout: Layout, now = Date.now()): Books {
  const f = new Findings();
  const cat = catalogFacts(h.catalog);
  checkRecharges(f, h, s, layout);
  checkRejections(f, s, cat);
  checkStock(f, h, s, cat);
  checkEvents(f, h, s);
  checkPartakes(f, h, s, cat, layout);
  checkUses(f, h, s);
  checkAccounts(f, s);
  checkPeriods(f, h, s, layout, now);
  checkDeadLetters(f, h);
  f.books.inputs = new Set((h.recharges ?? []).map((r) => `${r.userId}\u0000${r.outBusinessNo}`)).size + (h.partakes?.length ?? 0) + (h.uses?.length ?? 0) + (h.poison?.length ?? 0);
  return f.done();
}

/** A one-line summary for logs. */
export function describe(b: Books): string {
  return `${b.inputs} inputs, ${b.effects} effects, ${b.lost} lost, ${b.doubled} doubled${b.violations.length ? `; ${b.violations.length} violation(s): ${b.violations.slice(0, 4).join('; ')}` : ''}`;
}
