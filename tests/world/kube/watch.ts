/**
 * @module
 * One watch: a chunked stream of JSON lines (`{"type":"ADDED","object":{...}}`) fed by the store,
 * filtered by namespace and selectors (an object that stops or starts matching is sent as DELETED or
 * ADDED, as the watch cache does), with BOOKMARK events when asked for, a clean end at
 * `timeoutSeconds`, and Table or PartialObjectMetadata objects for clients that ask for them. Lines
 * are encoded once per event and shared by every watcher that needs the stored form.
 */
import { type FieldRequirement, type LabelSelectorReqs, matchFields, matchLabels } from "./selectors.ts";
import type { ChangeEvent, ChangeListener, Entry } from "./store.ts";
import { type IncludeObject, partialOf, type Representation, rowOf, tableOf } from "./table.ts";
import type { KubeObject, ResourceDef } from "./types.ts";

const encoder = new TextEncoder();

/** Which objects a watch or list selects. */
export interface Selection {
  namespace: string | undefined;
  labels: LabelSelectorReqs;
  fields: FieldRequirement[];
}

/** True when `object` is selected. */
export function selects(def: ResourceDef, selection: Selection, object: KubeObject): boolean {
  if (selection.namespace !== undefined && (object.metadata.namespace ?? "") !== selection.namespace) {
    return false;
  }
  if (selection.labels.length > 0 && !matchLabels(selection.labels, object.metadata.labels)) return false;
  if (selection.fields.length > 0) {
    return matchFields(selection.fields, (f) => def.fieldSelectors[f]?.(object));
  }
  return true;
}

/** Options of one watch. */
export interface WatchStreamOptions {
  def: ResourceDef;
  selection: Selection;
  representation: Representation;
  include: IncludeObject;
  bookmarks: boolean;
  timeoutMs: number;
  /** Stop the watch when this many events are queued unread (a stuck client). */
  maxQueued: number;
  /** The current resourceVersion, for bookmarks. */
  currentRv: () => number;
  onEnd: (stream: WatchStream) => void;
}

/** One open watch. */
export class WatchStream implements ChangeListener {
  readonly readable: ReadableStream<Uint8Array>;
  readonly #options: WatchStreamOptions;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sentColumns = false;
  #unsubscribe: (() => void) | undefined;
  readonly #convert: boolean;

  constructor(options: WatchStreamOptions) {
    this.#options = options;
    this.#convert = options.representation !== "object" ||
      options.def.storageVersion !== apiVersion(options.def);
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => this.close({ bookmark: false }),
    }, { highWaterMark: Number.MAX_SAFE_INTEGER });
    this.#timer = setTimeout(() => this.close({ bookmark: true }), options.timeoutMs);
  }

  /** Attaches the store subscription, so that closing the watch detaches it. */
  attach(unsubscribe: () => void): void {
    this.#unsubscribe = unsubscribe;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends the synthetic ADDED events of a watch that starts from the current state. */
  sendInitial(entries: Iterable<Entry>): void {
    for (const entry of entries) {
      if (!selects(this.#options.def, this.#options.selection, entry.object)) continue;
      this.#send("ADDED", entry);
    }
  }

  /** Replays history events (a watch from a resourceVersion). */
  replay(events: ChangeEvent[]): void {
    for (const e of events) this.onChange(e);
  }

  onChange(event: ChangeEvent): void {
    if (this.#closed) return;
    const { def, selection } = this.#options;
    const now = selects(def, selection, event.entry.object);
    const before = event.previous ? selects(def, selection, event.previous) : false;
    let type: "ADDED" | "MODIFIED" | "DELETED" | undefined;
    if (event.type === "ADDED") type = now ? "ADDED" : undefined;
    else if (event.type === "DELETED") type = before || now ? "DELETED" : undefined;
    else if (now && before) type = "MODIFIED";
    else if (now) type = "ADDED";
    else if (before) type = "DELETED";
    if (!type) return;
    if (type === event.type && !this.#convert) {
      event.line ??= encoder.encode(`{"type":"${type}","object":${event.entry.json}}\n`);
      this.#enqueue(event.line);
      return;
    }
    this.#send(type, event.entry);
  }

  #send(type: string, entry: Entry): void {
    if (!this.#convert) {
      this.#enqueue(encoder.encode(`{"type":"${type}","object":${entry.json}}\n`));
      return;
    }
    const object = this.#represent(entry);
    this.#enqueue(encoder.encode(`{"type":"${type}","object":${JSON.stringify(object)}}\n`));
  }

  #represent(entry: Entry): unknown {
    const { def, representation, include } = this.#options;
    let object = entry.object;
    if (def.storageVersion !== apiVersion(def)) object = { ...object, apiVersion: apiVersion(def) };
    if (representation === "partial") return partialOf(object);
    if (representation === "table") {
      const headers = !this.#sentColumns;
      this.#sentColumns = true;
      const table = tableOf(def, [], { resourceVersion: String(entry.rv) }, {
        include,
        headers,
        now: Date.now(),
      });
      table.rows = [rowOf(def, object, include, Date.now())];
      return table;
    }
    return object;
  }

  /** Sends a BOOKMARK carrying the current resourceVersion (when the client asked for bookmarks). */
  bookmark(annotations?: Record<string, string>): void {
    if (this.#closed || (!this.#options.bookmarks && !annotations)) return;
    const { def } = this.#options;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.#options.currentRv()) };
    if (annotations) metadata.annotations = annotations;
    const object = { kind: def.kind, apiVersion: apiVersion(def), metadata };
    this.#enqueue(encoder.encode(`{"type":"BOOKMARK","object":${JSON.stringify(object)}}\n`));
  }

  /** Sends an ERROR event with a Status and ends the watch. */
  error(status: unknown): void {
    this.#enqueue(encoder.encode(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`));
    this.close({ bookmark: false });
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#closed) return;
    const size = this.#controller.desiredSize;
    if (size !== null && Number.MAX_SAFE_INTEGER - size > this.#options.maxQueued) {
      // The client stopped reading: end its watch as the watch cache does with slow watchers.
      this.close({ bookmark: false });
      return;
    }
    this.#controller.enqueue(bytes);
  }

  /** Ends the watch cleanly. */
  close(options: { bookmark: boolean }): void {
    if (this.#closed) return;
    if (options.bookmark) this.bookmark();
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    try {
      this.#controller.close();
    } catch {
      // the client went away first
    }
    this.#options.onEnd(this);
  }
}

function apiVersion(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}
