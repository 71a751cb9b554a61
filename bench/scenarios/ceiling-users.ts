/**
 * Ceiling users are numbers (a pgbench variable cannot hold a built string): partake users
 * 1 000 000 000 + t · 1 000 000 + n, recharge users 2 000 000 000 + …, for split table t. The
 * pipeline's users (`bench-…`) are never all digits.
 */
export const CEILING_USER_BASE = { partake: 1_000_000_000, recharge: 2_000_000_000 } as const;
export const TABLE_STRIDE = 1_000_000;
export const ceilingUser = (kind: keyof typeof CEILING_USER_BASE, t: number, n: number): string => String(CEILING_USER_BASE[kind] + t * TABLE_STRIDE + n);
/** Matches every ceiling user id (for the clean-up after the ceilings). */
export const CEILING_USER_PATTERN = '^[12][0-9]{9}$';
