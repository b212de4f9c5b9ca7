/**
 * @module
 * A delay that ends early, without error, when its signal aborts: retry loops and back-offs then
 * notice the abort at their next check instead of waiting out the delay.
 */

/** Resolves after `ms`, or at once when `signal` aborts (or already has). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
