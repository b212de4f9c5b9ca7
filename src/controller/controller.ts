/**
 * @module
 * The two pieces every controller is built from. A {@linkcode ChangeFeed} fans a cache's changes
 * out to the controllers that subscribe to it, so caches are created first and controllers after
 * them, each subscribing to what it watches (no cache needs to know its controllers up front). A
 * {@linkcode Controller} is a work queue behind the leader gate: it takes keys only while this
 * replica leads, and {@linkcode Controller.lead} enqueues everything once when leadership starts.
 */
import { WorkQueue, type WorkQueueOptions } from "./queue.ts";

/** A cache change: the object under `key` now and before (undefined when absent). */
export type ChangeHandler<T> = (key: string, current: T | undefined, previous: T | undefined) => void;

/** Fans one cache's changes out to its subscribers. */
export class ChangeFeed<T> {
  readonly #handlers: ChangeHandler<T>[] = [];

  /** Passed to the cache as its `onChange`. */
  readonly emit: ChangeHandler<T> = (key, current, previous) => {
    for (const handler of this.#handlers) handler(key, current, previous);
  };

  /** Subscribes `handler` to every later change. */
  on(handler: ChangeHandler<T>): void {
    this.#handlers.push(handler);
  }
}

/** A work queue that takes keys only while this replica leads. */
export class Controller {
  readonly queue: WorkQueue;
  #leading = false;
  /**
   * Keys changed between {@linkcode Controller.expectLead} and {@linkcode Controller.lead} (a
   * leader whose start waits, e.g. for Quay's audit log): served first, ahead of the re-read of
   * everything.
   */
  readonly #missed = new Set<string>();
  #expecting = false;

  constructor(options: WorkQueueOptions) {
    this.queue = new WorkQueue(options);
  }

  /** True while this replica leads. */
  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Adds `key` (after `delayMs`) when this replica leads, and says whether it did; a follower's
   * leader sees the same events.
   */
  enqueue(key: string, delayMs = 0): boolean {
    if (this.#leading) this.queue.add(key, delayMs);
    else if (this.#expecting) this.#missed.add(key);
    return this.#leading;
  }

  /** Leadership has started but {@linkcode Controller.lead} will come later: keep the changes meanwhile. */
  expectLead(): void {
    this.#expecting = true;
  }

  /**
   * Starts taking keys: first those that changed since `expectLead()`, then `keys` in the background
   * lane (a new project is not kept waiting behind the re-read of every namespace).
   */
  lead(keys: Iterable<string>): void {
    this.#leading = true;
    this.#expecting = false;
    for (const key of this.#missed) this.queue.add(key);
    this.#missed.clear();
    for (const key of keys) this.queue.add(key, 0, "background");
  }

  /** Stops taking keys and finishes the running ones within `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    this.#leading = false;
    await this.queue.shutdown(graceMs);
  }
}
