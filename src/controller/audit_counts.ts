/**
 * @module
 * How many new audit log entries matter, from Quay's counts per kind and day
 * (`GET /superuser/aggregatelogs`), so a poll pages through the log only as far as it must: not at
 * all when no counted kind grew, and newest first only until the new entries are found otherwise —
 * past the operator's own creations and every image pull, which are logged too but not counted.
 *
 * Pure: counts in, numbers out. `quay_audit.ts` makes the calls.
 *
 * Why the sums stay exact: a snapshot is taken before the pages are read, so a page may also show
 * entries logged after it. Those are never counted towards the snapshot's growth: before a poll stops
 * early it asks for the counts again ({@linkcode growth} of the first snapshot to the second is how
 * many such entries a page can have shown), and the entries it read beyond the snapshot are carried
 * as `surplus` into the next poll, whose growth includes them again. Whenever a number is not
 * certain (no comparable snapshot, a count that shrank, days out of range) the answer is
 * `Infinity`: page to the cursor, as without counts. Too high only costs pages; too low could hide
 * drift, so every rule errs high.
 */

/** A UTC day as ms since the epoch (midnight). */
export type DayMs = number;

export const DAY_MS = 86_400_000;

/** Quay accepts at most a month between the start of the range and the day after its end. */
export const MAX_RANGE_MS = 31 * DAY_MS;

/** Counts of the kinds that matter per day, as read at one time. */
export interface CountSnapshot {
  /** First and last UTC day the counts cover, both inclusive: a day in range without a key had 0. */
  readonly from: DayMs;
  readonly to: DayMs;
  /** Count per `kind|day` (day as {@linkcode DayMs}). */
  readonly counts: Readonly<Record<string, number>>;
  /** Counted entries already read that were logged after these counts (subtracted from the next growth). */
  readonly surplus: number;
}

/** One count as Quay lists it. */
export interface KindCount {
  readonly kind: string;
  readonly count: number;
  readonly datetime: string;
}

function startOfDay(ms: number): DayMs {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/**
 * The days to ask for: from the previous snapshot's first day (so every entry logged since it is
 * in range, whatever day it is now) to tomorrow (Quay's clock may be ahead). The previous snapshot
 * is comparable only when that stays within Quay's month; otherwise the range starts yesterday.
 */
export function countRange(
  previous: CountSnapshot | undefined,
  now: number,
): { from: DayMs; to: DayMs; comparable: boolean } {
  const today = startOfDay(now);
  const yesterday = today - DAY_MS;
  const to = today + DAY_MS;
  if (!previous) return { from: yesterday, to, comparable: false };
  const from = Math.min(previous.from, yesterday);
  if (to + DAY_MS - from > MAX_RANGE_MS || previous.from > to) {
    return { from: yesterday, to, comparable: false };
  }
  return { from, to, comparable: true };
}

/**
 * The UTC day of a count: Quay prints midnight of the day in its own time zone, converted to UTC,
 * so the nearest midnight is the day (for zones within 12 hours of UTC).
 */
export function dayOf(datetime: string): DayMs | undefined {
  const at = Date.parse(datetime);
  if (Number.isNaN(at)) return undefined;
  return Math.round(at / DAY_MS) * DAY_MS;
}

/** The counts of `kinds` in Quay's answer for the range, as a snapshot (no surplus yet). */
export function tally(
  answer: readonly KindCount[],
  range: { from: DayMs; to: DayMs },
  kinds: ReadonlySet<string>,
): CountSnapshot {
  const counts: Record<string, number> = {};
  for (const c of answer) {
    if (!kinds.has(c.kind) || !Number.isFinite(c.count)) continue;
    const day = dayOf(c.datetime);
    if (day === undefined) continue;
    const key = `${c.kind}|${day}`;
    counts[key] = (counts[key] ?? 0) + c.count;
  }
  return { from: range.from, to: range.to, counts, surplus: 0 };
}

/**
 * How many counted entries were logged between `previous` and `current`, less those already read
 * (`previous.surplus`); `Infinity` when that cannot be known: no previous snapshot, a count that
 * shrank (logs rotated or a backend that estimates), a day outside what either covers.
 */
export function growth(previous: CountSnapshot | undefined, current: CountSnapshot): number {
  if (!previous) return Infinity;
  // Every entry logged since `previous` must lie on a day `current` covers: `countRange` starts it
  // at `previous.from` or earlier.
  if (current.from > previous.from) return Infinity;
  let sum = 0;
  for (const [key, count] of Object.entries(current.counts)) {
    const day = Number(key.slice(key.lastIndexOf("|") + 1));
    if (day < current.from || day > current.to) continue;
    const before = day >= previous.from && day <= previous.to ? previous.counts[key] ?? 0 : 0;
    if (count < before) return Infinity;
    sum += count - before;
  }
  for (const [key, before] of Object.entries(previous.counts)) {
    const day = Number(key.slice(key.lastIndexOf("|") + 1));
    if (day >= current.from && day <= current.to && (current.counts[key] ?? 0) < before) return Infinity;
  }
  const left = sum - previous.surplus;
  // Fewer than already read: the counts are not what they were, trust nothing.
  return left < 0 ? Infinity : left;
}

/**
 * The stop rule: a poll that wants `wanted` new counted entries may stop once it has found them,
 * not counting the `after` entries logged since its snapshot (which a page may have shown).
 */
export function foundEnough(found: number, wanted: number, after: number): boolean {
  return Number.isFinite(wanted) && Number.isFinite(after) && found - after >= wanted;
}

/**
 * The counted entries read beyond the snapshot, carried into the next poll: when the wanted ones were
 * all found, the rest were logged after it. After a read to the cursor with an uncertain `wanted`,
 * 0 (the next growth may then be too high once, which costs pages, never drift).
 */
export function surplusAfter(found: number, wanted: number): number {
  return Number.isFinite(wanted) ? Math.max(0, found - wanted) : 0;
}

/** The snapshot to keep: the days from yesterday on (later entries cannot fall earlier), with the surplus. */
export function keepSnapshot(current: CountSnapshot, now: number, surplus: number): CountSnapshot {
  const from = Math.max(current.from, startOfDay(now) - DAY_MS);
  const counts: Record<string, number> = {};
  for (const [key, count] of Object.entries(current.counts)) {
    if (Number(key.slice(key.lastIndexOf("|") + 1)) >= from) counts[key] = count;
  }
  return { from, to: current.to, counts, surplus };
}

/** A snapshot read back from storage, or undefined when it is not one. */
export function parseSnapshot(value: unknown): CountSnapshot | undefined {
  const v = value as Partial<CountSnapshot> | undefined;
  if (!v || typeof v !== "object") return undefined;
  if (typeof v.from !== "number" || typeof v.to !== "number" || typeof v.surplus !== "number") {
    return undefined;
  }
  if (!v.counts || typeof v.counts !== "object") return undefined;
  const counts: Record<string, number> = {};
  for (const [key, count] of Object.entries(v.counts)) {
    if (typeof count === "number" && Number.isFinite(count)) counts[key] = count;
  }
  return { from: v.from, to: v.to, counts, surplus: v.surplus };
}
