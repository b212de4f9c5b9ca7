/**
 * @module
 * The controller loop the behaviours share: list+watch a resource (re-listing on 410 Gone and on
 * any error, with back-off) and feed object keys to a keyed runner that reconciles one key at a
 * time, coalesces repeated wake-ups, and retries failures. Reconciles read the current object, never
 * the event, so a missed or repeated event does no harm. One AbortSignal stops everything.
 */
import type { KubeClient, KubeObject } from "./kube_client.ts";

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function keyOf(object: KubeObject): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by {@linkcode keyOf}. */
export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: "", name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * Runs `reconcile(key)` at most once at a time per key. A key enqueued while it runs runs again
 * afterwards (the object changed meanwhile); a failure is retried with back-off until it succeeds
 * or the signal aborts.
 */
export class KeyedRunner {
  readonly #reconcile: (key: string) => Promise<void>;
  readonly #signal: AbortSignal;
  readonly #running = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();

  constructor(reconcile: (key: string) => Promise<void>, signal: AbortSignal) {
    this.#reconcile = reconcile;
    this.#signal = signal;
  }

  enqueue(key: string): void {
    if (this.#signal.aborted) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    const run = this.#loop(key).finally(() => this.#running.delete(key));
    this.#running.set(key, run);
  }

  async #loop(key: string): Promise<void> {
    let failures = 0;
    do {
      this.#dirty.delete(key);
      try {
        await this.#reconcile(key);
        failures = 0;
      } catch {
        if (this.#signal.aborted) return;
        // Transient (a conflict, the server restarting): try again, backing off to 2 s.
        failures++;
        this.#dirty.add(key);
        await sleep(Math.min(2000, 50 * 2 ** failures), this.#signal);
      }
    } while (this.#dirty.has(key) && !this.#signal.aborted);
  }

  /** Resolves once nothing runs (used on stop, after aborting). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()]);
  }
}

/** Options of {@linkcode runInformer}. */
export interface InformerOptions {
  client: KubeClient;
  /** Collection path, e.g. `/api/v1/namespaces` or `/apis/build.openshift.io/v1/builds`. */
  path: string;
  /** Called with every object listed or changed (also deleted ones, so reconciles can see them gone). */
  onObject(object: KubeObject): void;
  signal: AbortSignal;
}

/**
 * Lists then watches `path` until `signal` aborts, re-listing on 410 Gone (HTTP or in-stream) and
 * after errors. Resolves when stopped.
 */
export async function runInformer(options: InformerOptions): Promise<void> {
  const { client, path, onObject, signal } = options;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const list = await client.request("GET", path, { signal });
      let resourceVersion = String(list.metadata?.resourceVersion ?? "");
      for (const item of (list.items ?? []) as KubeObject[]) onObject(item);
      failures = 0;
      // Watch from the list's version; an ended stream resumes from the last version seen.
      relist: while (!signal.aborted) {
        for await (const event of client.watch(path, resourceVersion, signal)) {
          if (event.type === "ERROR") {
            // 410 Gone (compacted) or anything else: start over with a fresh list.
            break relist;
          }
          const rv = event.object.metadata?.resourceVersion;
          if (rv) resourceVersion = rv;
          if (event.type !== "BOOKMARK") onObject(event.object);
        }
      }
    } catch {
      if (signal.aborted) return;
      failures++;
      await sleep(Math.min(2000, 50 * 2 ** failures), signal);
    }
  }
}
