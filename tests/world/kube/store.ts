/**
 * @module
 * The world's storage: objects by resource, namespace and name, each version serialized to JSON
 * once and reused for gets, lists and every watcher; one global, monotonically increasing
 * resourceVersion (as etcd's revision); and a bounded history of change events for watches that
 * start from a resourceVersion. Older versions are "compacted" and answered with 410 Gone.
 */
import type { KubeObject, ObjectMeta } from "./types.ts";

/** One stored version of an object; never mutated once stored. */
export interface Entry {
  readonly object: KubeObject;
  readonly json: string;
  readonly rv: number;
}

/** A change, as watches see it. */
export interface ChangeEvent {
  readonly rv: number;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly storageKey: string;
  /** The new state; for DELETED the last state, stamped with the deletion's resourceVersion. */
  readonly entry: Entry;
  /** The state before a MODIFIED or DELETED. */
  readonly previous: KubeObject | undefined;
  /** Encoded `{"type":..,"object":..}\n`, shared by every watcher that needs no conversion. */
  line?: Uint8Array;
}

/** Receives the changes of one resource. */
export interface ChangeListener {
  onChange(event: ChangeEvent): void;
}

const META_ORDER = [
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
];

/** Orders an object's members the way kube-apiserver serializes them (kind, apiVersion, metadata, ...). */
export function canonical(object: KubeObject): KubeObject {
  const meta: Record<string, unknown> = {};
  const source = object.metadata ?? {};
  for (const key of META_ORDER) if (source[key] !== undefined) meta[key] = source[key];
  for (const key of Object.keys(source)) {
    if (!(key in meta) && source[key] !== undefined) meta[key] = source[key];
  }
  const out: Record<string, unknown> = { kind: object.kind, apiVersion: object.apiVersion, metadata: meta };
  for (const key of Object.keys(object)) {
    if (key !== "kind" && key !== "apiVersion" && key !== "metadata") out[key] = object[key];
  }
  return out as KubeObject;
}

class Collection {
  readonly byNamespace = new Map<string, Map<string, Entry>>();
  size = 0;
  #sortedNamespaces: string[] | undefined;
  readonly #sortedNames = new Map<string, string[]>();

  get(namespace: string, name: string): Entry | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  set(namespace: string, name: string, entry: Entry): void {
    let names = this.byNamespace.get(namespace);
    if (!names) {
      names = new Map();
      this.byNamespace.set(namespace, names);
      this.#sortedNamespaces = undefined;
    }
    if (!names.has(name)) {
      this.size++;
      this.#sortedNames.delete(namespace);
    }
    names.set(name, entry);
  }

  delete(namespace: string, name: string): void {
    const names = this.byNamespace.get(namespace);
    if (!names?.delete(name)) return;
    this.size--;
    this.#sortedNames.delete(namespace);
    if (names.size === 0) {
      this.byNamespace.delete(namespace);
      this.#sortedNamespaces = undefined;
    }
  }

  /** Entries in etcd key order (namespace, then name), optionally of one namespace, starting after a key. */
  *entries(namespace: string | undefined, after?: { namespace: string; name: string }): Generator<Entry> {
    const namespaces = namespace === undefined
      ? this.#namespaces()
      : this.byNamespace.has(namespace)
      ? [namespace]
      : [];
    for (const ns of namespaces) {
      if (after && ns < after.namespace) continue;
      const names = this.byNamespace.get(ns);
      if (!names) continue;
      let sorted = this.#sortedNames.get(ns);
      if (!sorted) {
        sorted = [...names.keys()].sort();
        this.#sortedNames.set(ns, sorted);
      }
      let start = 0;
      if (after && ns === after.namespace) start = upperBound(sorted, after.name);
      for (let i = start; i < sorted.length; i++) {
        const entry = names.get(sorted[i] as string);
        if (entry) yield entry;
      }
    }
  }

  /** How many entries come after a key (of one namespace, or of all). */
  countAfter(namespace: string | undefined, after: { namespace: string; name: string }): number {
    const inNamespace = (ns: string, from?: string) => {
      const names = this.byNamespace.get(ns);
      if (!names) return 0;
      let sorted = this.#sortedNames.get(ns);
      if (!sorted) {
        sorted = [...names.keys()].sort();
        this.#sortedNames.set(ns, sorted);
      }
      return from === undefined ? sorted.length : sorted.length - upperBound(sorted, from);
    };
    if (namespace !== undefined) {
      return namespace === after.namespace ? inNamespace(namespace, after.name) : 0;
    }
    const namespaces = this.#namespaces();
    let n = inNamespace(after.namespace, after.name);
    for (let i = upperBound(namespaces, after.namespace); i < namespaces.length; i++) {
      n += this.byNamespace.get(namespaces[i] as string)?.size ?? 0;
    }
    return n;
  }

  #namespaces(): string[] {
    this.#sortedNamespaces ??= [...this.byNamespace.keys()].sort();
    return this.#sortedNamespaces;
  }
}

function upperBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Options for {@linkcode Store}. */
export interface StoreOptions {
  /** Change events kept for watches from a resourceVersion. */
  historySize: number;
}

/** All objects of the world, their versions and the change history. */
export class Store {
  #rv = 1;
  readonly #collections = new Map<string, Collection>();
  readonly #listeners = new Map<string, Set<ChangeListener>>();
  readonly #history: (ChangeEvent | undefined)[];
  #head = 0;
  #count = 0;
  /** The highest resourceVersion no longer in the history: watches from below it get 410. */
  #compactedThrough = 0;

  constructor(options: StoreOptions) {
    this.#history = new Array(Math.max(1, options.historySize));
  }

  /** The current resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** The oldest resourceVersion a watch may start from. */
  get oldestWatchable(): number {
    return this.#compactedThrough;
  }

  /** Forgets the history: every resourceVersion before now becomes too old. */
  compact(): void {
    this.#history.fill(undefined);
    this.#head = 0;
    this.#count = 0;
    this.#compactedThrough = this.#rv;
  }

  #collection(storageKey: string): Collection {
    let c = this.#collections.get(storageKey);
    if (!c) {
      c = new Collection();
      this.#collections.set(storageKey, c);
    }
    return c;
  }

  get(storageKey: string, namespace: string, name: string): Entry | undefined {
    return this.#collections.get(storageKey)?.get(namespace, name);
  }

  /** Number of objects of a resource. */
  count(storageKey: string): number {
    return this.#collections.get(storageKey)?.size ?? 0;
  }

  /** Objects in key order. */
  entries(
    storageKey: string,
    namespace?: string,
    after?: { namespace: string; name: string },
  ): Iterable<Entry> {
    return this.#collections.get(storageKey)?.entries(namespace, after) ?? [];
  }

  /** How many objects of a resource come after a key, in list order. */
  countAfter(
    storageKey: string,
    namespace: string | undefined,
    after: { namespace: string; name: string },
  ): number {
    return this.#collections.get(storageKey)?.countAfter(namespace, after) ?? 0;
  }

  /** Every namespace that holds objects of `storageKey`. */
  namespacesOf(storageKey: string): string[] {
    return [...(this.#collections.get(storageKey)?.byNamespace.keys() ?? [])];
  }

  /** Resource keys with objects in `namespace`. */
  resourcesIn(namespace: string): string[] {
    const out: string[] = [];
    for (const [key, c] of this.#collections) if (c.byNamespace.has(namespace)) out.push(key);
    return out;
  }

  /** Stamps the next resourceVersion on `object`, stores it and tells watchers. */
  put(storageKey: string, object: KubeObject, type: "ADDED" | "MODIFIED"): Entry {
    const meta = object.metadata as ObjectMeta;
    const previous = this.get(storageKey, meta.namespace ?? "", meta.name ?? "");
    const rv = ++this.#rv;
    meta.resourceVersion = String(rv);
    const stored = canonical(object);
    const entry: Entry = { object: stored, json: JSON.stringify(stored), rv };
    this.#collection(storageKey).set(meta.namespace ?? "", meta.name ?? "", entry);
    this.#publish({ rv, type, storageKey, entry, previous: previous?.object });
    return entry;
  }

  /** Removes an object; the DELETED event carries its last state at a new resourceVersion. */
  remove(storageKey: string, namespace: string, name: string): Entry | undefined {
    const previous = this.get(storageKey, namespace, name);
    if (!previous) return undefined;
    this.#collection(storageKey).delete(namespace, name);
    const rv = ++this.#rv;
    const object = JSON.parse(previous.json) as KubeObject;
    object.metadata.resourceVersion = String(rv);
    const entry: Entry = { object, json: JSON.stringify(object), rv };
    this.#publish({ rv, type: "DELETED", storageKey, entry, previous: previous.object });
    return entry;
  }

  /** Drops every object of a resource without events (its CRD is gone). */
  drop(storageKey: string): void {
    this.#collections.delete(storageKey);
  }

  subscribe(storageKey: string, listener: ChangeListener): () => void {
    let set = this.#listeners.get(storageKey);
    if (!set) {
      set = new Set();
      this.#listeners.set(storageKey, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Listeners of a resource (to end their watches). */
  listeners(storageKey: string): ChangeListener[] {
    return [...(this.#listeners.get(storageKey) ?? [])];
  }

  /**
   * The events of `storageKey` after `rv`, oldest first; `undefined` when some were compacted.
   */
  since(storageKey: string, rv: number): ChangeEvent[] | undefined {
    if (rv < this.#compactedThrough) return undefined;
    const out: ChangeEvent[] = [];
    const size = this.#history.length;
    const start = (this.#head - this.#count + size) % size;
    // Binary search for the first event after rv: the ring is sorted by rv.
    let lo = 0;
    let hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.#history[(start + mid) % size] as ChangeEvent;
      if (e.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#count; i++) {
      const e = this.#history[(start + i) % size] as ChangeEvent;
      if (e.storageKey === storageKey) out.push(e);
    }
    return out;
  }

  #publish(event: ChangeEvent): void {
    const size = this.#history.length;
    if (this.#count === size) {
      const evicted = this.#history[this.#head] as ChangeEvent;
      this.#compactedThrough = Math.max(this.#compactedThrough, evicted.rv);
    } else {
      this.#count++;
    }
    this.#history[this.#head] = event;
    this.#head = (this.#head + 1) % size;
    const listeners = this.#listeners.get(event.storageKey);
    if (listeners) { for (const l of listeners) l.onChange(event); }
  }
}
