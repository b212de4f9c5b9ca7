/**
 * @module
 * Request pacing of the Quay client: a counting semaphore that caps concurrent requests, and the
 * adaptive rate ({@linkcode AdaptiveRate}) that slows every call of a client after Quay answers 429
 * and holds them all during a `Retry-After`, so many workers behind one client do not keep
 * hammering a rate-limited Quay.
 */

/** A small counting semaphore. */
export class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

/**
 * Request pacing after a rate limit: unlimited until Quay first answers 429, then a rate that
 * halves at every 429 (once per burst of answers to requests sent before the cut) and grows by
 * {@linkcode AdaptiveRate.increasePerSecond} requests/s per second of accepted requests, as TCP's
 * congestion control does. A `Retry-After` stops every request until it has passed.
 *
 * Two rules keep a burst of 429s from slowing the client for minutes. The floor is 1 request/s:
 * every 429 already pauses all calls for its `Retry-After` (1 s when absent), so a slower pace
 * only stretches the wait for the next try without sparing Quay anything. And after
 * {@linkcode AdaptiveRate.quietMs} without a 429 the rate grows by 1 request/s per accepted
 * request, doubling about every 0.7 s back to unpaced, as TCP's slow start does after an idle
 * period; the next 429 halves it again.
 */
export class AdaptiveRate {
  /** Lowest rate it falls to, requests/s (a 429's pause is at least 1 s anyway). */
  static readonly minRate = 1;
  /** Additive increase, requests/s gained per second of accepted requests. */
  static readonly increasePerSecond = 0.2;
  /** After this long without a 429, the rate grows multiplicatively. */
  static readonly quietMs = 10_000;
  /** Above this the pacing is switched off again. */
  static readonly maxRate = 1_000;

  readonly #now: () => number;
  #rate = Infinity;
  #nextSlot = 0;
  #pausedUntil = 0;
  #lastCut = -Infinity;
  #last429 = -Infinity;
  #accepted: number[] = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Current rate in requests/s (`Infinity` when not pacing). */
  get rate(): number {
    return this.#rate;
  }

  /** Milliseconds to wait before the next request may go; reserves its slot when it is 0. */
  reserve(): number {
    const now = this.#now();
    const start = Math.max(now, this.#pausedUntil, Number.isFinite(this.#rate) ? this.#nextSlot : 0);
    if (start > now) return start - now;
    if (Number.isFinite(this.#rate)) this.#nextSlot = now + 1000 / this.#rate;
    return 0;
  }

  /** Records an answer to a request sent at `sentAt`. */
  answered(sentAt: number, status: number, retryAfterSeconds: number | undefined): void {
    const now = this.#now();
    if (status === 429 || (status === 503 && retryAfterSeconds !== undefined)) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + 1000 * (retryAfterSeconds ?? 1));
      if (status === 429) this.#last429 = now;
      if (status === 429 && sentAt >= this.#lastCut) {
        // Quay's own rate is unknown: start from what it accepted in the last second.
        this.#accepted = this.#accepted.filter((t) => t > now - 1000);
        const base = Number.isFinite(this.#rate) ? this.#rate : Math.max(1, this.#accepted.length);
        this.#rate = Math.max(AdaptiveRate.minRate, base / 2);
        this.#lastCut = now;
      }
      return;
    }
    // Only answers Quay served count as room to grow; failures and server errors do not.
    if (status === 0 || status >= 500) return;
    if (!Number.isFinite(this.#rate)) {
      this.#accepted.push(now);
      if (this.#accepted.length > 64) this.#accepted.shift();
      return;
    }
    this.#rate += now - this.#last429 >= AdaptiveRate.quietMs
      ? 1
      : AdaptiveRate.increasePerSecond / this.#rate;
    if (this.#rate > AdaptiveRate.maxRate) this.#rate = Infinity;
  }
}
