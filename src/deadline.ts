/**
 * @module
 * A per-call deadline whose timer ends with the call. `AbortSignal.timeout(ms)` keeps its timer —
 * and through it the signal, its listeners and whatever they close over — alive for the full `ms`
 * even when the call answered in a millisecond: a burst of 9,000 Kubernetes writes held about 12,000
 * such timers in the heap for 30 s after it was done. {@linkcode withDeadline} clears its timer
 * (and unhooks the caller's signal) as soon as the call settles.
 */

/**
 * Runs `call` with a signal that aborts after `ms` (a `TimeoutError` DOMException, as
 * `AbortSignal.timeout` gives) or when `parent` aborts (with the parent's reason), whichever comes
 * first; the timer and the link to `parent` are released when `call` settles.
 */
export async function withDeadline<T>(
  ms: number,
  parent: AbortSignal | undefined,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`Signal timed out after ${ms} ms`, "TimeoutError")),
    ms,
  );
  const follow = () => controller.abort(parent?.reason);
  if (parent?.aborted) follow();
  else parent?.addEventListener("abort", follow, { once: true });
  try {
    return await call(controller.signal);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener("abort", follow);
  }
}
