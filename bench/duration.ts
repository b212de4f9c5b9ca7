/**
 * @module
 * Durations on the benchmark's command line (`--time-limit=15m`): a number with a unit `ms`, `s`,
 * `m` or `h`, or several (`1h30m`); a bare number is seconds.
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of `text`; throws a RangeError naming the text when it is not a positive duration. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return checked(Number(trimmed) * 1000, text);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== trimmed) {
    throw new RangeError(`"${text}" is not a duration: use e.g. 900, 900s, 15m or 1h30m`);
  }
  return checked(parts.reduce((ms, p) => ms + Number(p[1]) * (UNITS[p[2] as string] as number), 0), text);
}

function checked(ms: number, text: string): number {
  if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`"${text}" is not a positive duration`);
  return Math.round(ms);
}
