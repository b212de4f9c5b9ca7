/**
 * @module
 * A supervised list-and-watch cache (an "informer"). It lists a collection page by page, then
 * watches from the list's resourceVersion with bookmarks and a server-side timeout; it relists on
 * 410 Gone, backs off with jitter on any other failure, and never stops until its signal aborts.
 * `ready` resolves after the first complete list. Each change is reported to `onChange` with the
 * object's key only (handlers enqueue keys; reconcilers read the cache), and objects can be
 * projected to the fields the operator needs to keep memory small.
 */
import { backoffDelay, KubeApiError, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { KubeClient } from "./client.ts";
import type { KubeObject, ResourceType } from "./resources.ts";
import { sleepUnlessAborted } from "../sleep.ts";

/** `namespace/name` for namespaced objects, `name` otherwise. */
export function objectKey(object: { metadata: { name?: string; namespace?: string } }): string {
  const { name = "", namespace } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/** Options for {@linkcode Reflector}. */
export interface ReflectorOptions<T> {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Keeps only what is needed; returning `undefined` drops the object from the cache. */
  project?: (object: KubeObject) => T | undefined;
  /** Called after the cache changed for `key` (also for objects dropped by `project`). */
  onChange?: (key: string, current: T | undefined, previous: T | undefined) => void;
  /** Called when the first list completed. */
  onReady?: () => void;
  /** Secondary index: objects are also found by this value (e.g. their namespace). */
  indexBy?: (object: T) => string;
  logger: Logger;
  /** Server-side watch timeout. @default 300 */
  watchTimeoutSeconds?: number;
  /** Page size of lists. @default 500 */
  pageSize?: number;
}

/** A cache of one collection kept current by list and watch. */
export class Reflector<T = KubeObject> {
  readonly type: ResourceType;
  readonly #client: KubeClient;
  readonly #options: ReflectorOptions<T>;
  readonly #store = new Map<string, T>();
  readonly #index = new Map<string, Set<string>>();
  #resourceVersion = "";
  #ready = false;
  #relistRequested = false;
  #watchAbort: AbortController | undefined;
  #resolveReady!: () => void;
  /** Resolves once the first full list is in the cache. */
  readonly ready: Promise<void>;

  constructor(client: KubeClient, type: ResourceType, options: ReflectorOptions<T>) {
    this.type = type;
    this.#client = client;
    this.#options = options;
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
  }

  /** True after the first full list. */
  get isReady(): boolean {
    return this.#ready;
  }

  /** The cached object under `key`. */
  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  /** All cached objects. */
  values(): IterableIterator<T> {
    return this.#store.values();
  }

  /** All cached keys. */
  keys(): IterableIterator<string> {
    return this.#store.keys();
  }

  /** Keys of the cached objects whose index value is `value`. */
  keysBy(value: string): ReadonlySet<string> {
    return this.#index.get(value) ?? EMPTY;
  }

  /** Number of cached objects. */
  get size(): number {
    return this.#store.size;
  }

  /** Drops the watch and lists again (e.g. after the projection's criteria changed). */
  relist(): void {
    this.#relistRequested = true;
    this.#watchAbort?.abort();
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let needList = true;
    const log = this.#options.logger.with({ resource: this.type.plural, namespace: this.#options.namespace });
    while (!signal.aborted) {
      try {
        if (needList || this.#relistRequested) {
          this.#relistRequested = false;
          await this.#list();
          needList = false;
          if (!this.#ready) {
            this.#ready = true;
            this.#resolveReady();
            this.#options.onReady?.();
          }
        }
        // A relist asked for while the list ran must not wait for this watch to time out.
        this.#watchAbort = new AbortController();
        if (this.#relistRequested) continue;
        await this.#watch(AbortSignal.any([signal, this.#watchAbort.signal]));
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        // The watch was dropped on purpose by relist(): not a failure, no back-off.
        if (this.#relistRequested) continue;
        if (error instanceof KubeApiError && error.status === 410) {
          log.debug("watch expired, relisting", {});
          needList = true;
          continue;
        }
        failures++;
        const delay = backoffDelay(failures, { baseMs: 500, maxMs: 30_000 });
        log.warn("watch failed", { error: messageOf(error), retryInMs: delay, failures });
        // A dropped stream can resume from the last resourceVersion; after repeated failures the
        // position itself may be the problem, and relisting is always correct.
        if (failures >= 3) needList = true;
        await sleepUnlessAborted(delay, signal);
      }
    }
  }

  async #list(): Promise<void> {
    const seen = new Set<string>();
    let token: string | undefined;
    let resourceVersion = "";
    const fresh = new Map<string, T>();
    do {
      const page = await this.#client.list(this.type, {
        namespace: this.#options.namespace,
        labelSelector: this.#options.labelSelector,
        fieldSelector: this.#options.fieldSelector,
        limit: this.#options.pageSize ?? 500,
        continue: token,
      });
      for (const item of page.items) {
        const key = objectKey(item);
        seen.add(key);
        const projected = this.#project(item);
        if (projected !== undefined) fresh.set(key, projected);
      }
      token = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion ?? "";
    } while (token);
    // Replace the store, reporting every difference, including deletions missed while away.
    for (const [key, previous] of [...this.#store]) {
      if (!fresh.has(key)) {
        this.#remove(key);
        this.#options.onChange?.(key, undefined, previous);
      }
    }
    for (const [key, current] of fresh) {
      const previous = this.#store.get(key);
      this.#put(key, current);
      this.#options.onChange?.(key, current, previous);
    }
    this.#resourceVersion = resourceVersion;
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const stream = this.#client.watch(this.type, {
      namespace: this.#options.namespace,
      labelSelector: this.#options.labelSelector,
      fieldSelector: this.#options.fieldSelector,
      resourceVersion: this.#resourceVersion,
      timeoutSeconds: this.#options.watchTimeoutSeconds ?? 300,
      allowWatchBookmarks: true,
      signal,
    });
    for await (const event of stream) {
      const rv = event.object?.metadata?.resourceVersion;
      if (event.type === "BOOKMARK") {
        if (rv) this.#resourceVersion = rv;
        continue;
      }
      const key = objectKey(event.object);
      const previous = this.#store.get(key);
      if (event.type === "DELETED") {
        this.#remove(key);
        this.#options.onChange?.(key, undefined, previous);
      } else {
        const current = this.#project(event.object);
        if (current === undefined) this.#remove(key);
        else this.#put(key, current);
        if (current !== undefined || previous !== undefined) this.#options.onChange?.(key, current, previous);
      }
      if (rv) this.#resourceVersion = rv;
    }
  }

  #put(key: string, object: T): void {
    const previous = this.#store.get(key);
    if (previous !== undefined) this.#unindex(key, previous);
    this.#store.set(key, object);
    if (this.#options.indexBy) {
      const value = this.#options.indexBy(object);
      let keys = this.#index.get(value);
      if (!keys) this.#index.set(value, keys = new Set());
      keys.add(key);
    }
  }

  #remove(key: string): void {
    const previous = this.#store.get(key);
    if (previous === undefined) return;
    this.#unindex(key, previous);
    this.#store.delete(key);
  }

  #unindex(key: string, object: T): void {
    if (!this.#options.indexBy) return;
    const value = this.#options.indexBy(object);
    const keys = this.#index.get(value);
    keys?.delete(key);
    if (keys?.size === 0) this.#index.delete(value);
  }

  #project(object: KubeObject): T | undefined {
    return this.#options.project ? this.#options.project(object) : object as unknown as T;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
