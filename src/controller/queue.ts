/**
 * @module
 * The keyed work queue behind every controller. Keys are deduplicated while pending; one key is
 * never reconciled twice at the same time (a key added while running runs once more afterwards);
 * concurrency is capped; requeues may be delayed (the earliest requested time wins). The reconcile
 * result decides what comes next, and failures are routed through one policy: transient errors
 * back off per key with jitter, conflicts retry promptly, terminal errors wait for a change (with
 * a slow safety-net requeue, because a missed watch event must not strand a key forever).
 *
 * Two lanes: work caused by a change (a new project, an edit) is served before `background` work
 * (the re-reads of every key at startup and on resync), so a restart of an operator with thousands
 * of namespaces does not keep a new project waiting behind all of them. A key asked for in both
 * lanes is served in the first.
 */
import { backoffDelay, messageOf, reasonOf, retryAfterMsOf, retryClassOf } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Which lane a key waits in: `change` is served before `background`. */
export type Lane = "change" | "background";

/** What a reconcile asks for next. */
export type Action =
  | { readonly requeueAfterMs: number; readonly lane?: Lane }
  | { readonly awaitChange: true };

/** Requeue after `ms` (a periodic re-read passes `"background"`). */
export function requeueAfter(ms: number, lane: Lane = "change"): Action {
  return lane === "change" ? { requeueAfterMs: ms } : { requeueAfterMs: ms, lane };
}

/** Wait for a watch event to add the key again. */
export const AWAIT_CHANGE: Action = Object.freeze({ awaitChange: true });

/** A reconcile function for one key. */
export type Reconcile = (key: string, signal: AbortSignal) => Promise<Action>;

/** Observations for metrics. */
export interface QueueObserver {
  reconciled?(outcome: { key: string; durationMs: number; error?: unknown }): void;
  depth?(pending: number): void;
}

/** Options for {@linkcode WorkQueue}. */
export interface WorkQueueOptions {
  /** Name used in logs and metrics. */
  name: string;
  reconcile: Reconcile;
  logger: Logger;
  /** Reconciles running at once. @default 4 */
  concurrency?: number;
  /** First backoff after a transient failure. @default 500 */
  backoffBaseMs?: number;
  /** Longest backoff. @default 300_000 */
  backoffMaxMs?: number;
  /** Safety-net requeue after a terminal failure. @default 600_000 */
  terminalRequeueMs?: number;
  observer?: QueueObserver;
}

/** A keyed, deduplicating, per-key serialised work queue with delayed requeue. */
export class WorkQueue {
  readonly #options: WorkQueueOptions;
  /** Keys ready to run, per lane in arrival order; a key whose lane changed is skipped when met. */
  readonly #ready: Record<Lane, string[]> = { change: [], background: [] };
  /** Ready keys and their lane. */
  readonly #readySet = new Map<string, Lane>();
  readonly #running = new Set<string>();
  /** Keys added while running, and their lane: they run again when the current run ends. */
  readonly #dirty = new Map<string, Lane>();
  readonly #delayed = new Map<
    string,
    { at: number; lane: Lane; timer: ReturnType<typeof setTimeout> }
  >();
  readonly #failures = new Map<string, number>();
  readonly #inFlight = new Set<Promise<void>>();
  #controller = new AbortController();
  #stopped = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: WorkQueueOptions) {
    this.#options = options;
  }

  /** Keys pending or delayed (not running). */
  get depth(): number {
    return this.#readySet.size + this.#delayed.size;
  }

  /** True when nothing is pending, delayed for less than `withinMs`, or running. */
  isIdle(withinMs = 0): boolean {
    if (this.#readySet.size > 0 || this.#running.size > 0) return false;
    const horizon = Date.now() + withinMs;
    for (const { at } of this.#delayed.values()) if (at <= horizon) return false;
    return true;
  }

  /**
   * Adds `key`, now or after `delayMs`, in `lane`. Adding an already-pending key is a no-op, except
   * that a `change` moves a key waiting in the background lane ahead.
   */
  add(key: string, delayMs = 0, lane: Lane = "change"): void {
    if (this.#stopped) return;
    if (delayMs > 0) {
      if (this.#readySet.has(key)) return;
      const at = Date.now() + delayMs;
      const existing = this.#delayed.get(key);
      if (existing && existing.at <= at) return;
      if (existing) clearTimeout(existing.timer);
      const timer = setTimeout(() => {
        this.#delayed.delete(key);
        this.add(key, 0, lane);
      }, delayMs);
      this.#delayed.set(key, { at, lane, timer });
      this.#report();
      return;
    }
    const delayed = this.#delayed.get(key);
    if (delayed) {
      clearTimeout(delayed.timer);
      this.#delayed.delete(key);
    }
    if (this.#running.has(key)) {
      if (this.#dirty.get(key) !== "change") this.#dirty.set(key, lane);
      return;
    }
    const current = this.#readySet.get(key);
    if (current === "change" || current === lane) return;
    this.#readySet.set(key, lane);
    this.#ready[lane].push(key);
    this.#report();
    this.#pump();
  }

  /** Resolves when the queue has nothing ready or running (delayed keys do not count). */
  async idle(): Promise<void> {
    while (this.#readySet.size > 0 || this.#running.size > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  /**
   * Stops taking work, aborts the signal given to running reconciles after `graceMs`, and resolves
   * when they have finished.
   */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#ready.change.length = 0;
    this.#ready.background.length = 0;
    this.#readySet.clear();
    const timer = setTimeout(() => this.#controller.abort(), graceMs);
    await Promise.allSettled([...this.#inFlight]);
    clearTimeout(timer);
    this.#controller.abort();
  }

  #report(): void {
    this.#options.observer?.depth?.(this.depth);
  }

  #pump(): void {
    const limit = this.#options.concurrency ?? 4;
    while (!this.#stopped && this.#running.size < limit && this.#readySet.size > 0) {
      const key = this.#next();
      if (key === undefined) break;
      this.#readySet.delete(key);
      this.#running.add(key);
      const run = this.#run(key).finally(() => {
        this.#inFlight.delete(run);
        this.#running.delete(key);
        const again = this.#dirty.get(key);
        if (again !== undefined) {
          this.#dirty.delete(key);
          this.add(key, 0, again);
        }
        this.#report();
        this.#pump();
        if (this.#readySet.size === 0 && this.#running.size === 0) {
          for (const wake of this.#idleWaiters.splice(0)) wake();
        }
      });
      this.#inFlight.add(run);
    }
  }

  /** The next ready key: change lane first; entries left behind by a lane change are dropped. */
  #next(): string | undefined {
    for (const lane of ["change", "background"] as const) {
      const list = this.#ready[lane];
      while (list.length > 0) {
        const key = list.shift() as string;
        if (this.#readySet.get(key) === lane) return key;
      }
    }
    return undefined;
  }

  async #run(key: string): Promise<void> {
    const started = performance.now();
    const log = this.#options.logger;
    try {
      const action = await this.#options.reconcile(key, this.#controller.signal);
      this.#failures.delete(key);
      this.#options.observer?.reconciled?.({ key, durationMs: performance.now() - started });
      if ("requeueAfterMs" in action) this.add(key, Math.max(1, action.requeueAfterMs), action.lane);
    } catch (error) {
      this.#options.observer?.reconciled?.({ key, durationMs: performance.now() - started, error });
      if (this.#stopped) return;
      const retry = retryClassOf(error);
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      let delay: number;
      if (retry === "conflict") {
        delay = Math.min(2_000, 50 * failures);
      } else if (retry === "transient") {
        delay = backoffDelay(failures, {
          baseMs: this.#options.backoffBaseMs ?? 500,
          maxMs: this.#options.backoffMaxMs ?? 300_000,
        });
        // Never sooner than the server asked (Retry-After, a name Quay frees later).
        delay = Math.max(delay, retryAfterMsOf(error));
      } else {
        delay = this.#options.terminalRequeueMs ?? 600_000;
      }
      log.warn("reconcile failed", {
        queue: this.#options.name,
        key,
        reason: reasonOf(error),
        error: messageOf(error),
        retry,
        retryInMs: delay,
      });
      this.add(key, delay);
    }
  }
}
