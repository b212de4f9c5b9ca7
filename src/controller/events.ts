/**
 * @module
 * Records Kubernetes Events (`core/v1`) for what the operator did and what failed. Repeats of the
 * same event (same object, type, reason and message) are folded into one Event whose `count` grows,
 * written at most every few seconds, as the Kubernetes event recorder does. Events about
 * cluster-scoped objects (Namespaces, QuayIntegrations) live in the `default` namespace, which is
 * where the API server accepts them. Recording never throws: an Event that cannot be written is
 * logged and dropped, it never fails a reconcile.
 */
import { messageOf } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { EVENTS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { COMPONENT } from "../names.ts";

/** The object an Event is about. */
export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly uid?: string | undefined;
}

/** Normal or Warning. */
export type EventType = "Normal" | "Warning";

/** Emits Events. */
export interface EventSink {
  emit(target: EventTarget, type: EventType, reason: string, message: string): void;
}

interface Folded {
  name: string;
  namespace: string;
  count: number;
  written: number;
  lastWriteAt: number;
  pending: Promise<void>;
}

/** Options for {@linkcode EventRecorder}. */
export interface EventRecorderOptions {
  /** Reporting instance (pod name). */
  instance?: string;
  /** Shortest interval between writes of one folded event. @default 5_000 */
  foldIntervalMs?: number;
  /** Called for each emitted event (metrics, tests). */
  onEmit?: (event: { target: EventTarget; type: EventType; reason: string; message: string }) => void;
}

function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Writes Events through the Kubernetes API. */
export class EventRecorder implements EventSink {
  readonly #client: KubeClient;
  readonly #logger: Logger;
  readonly #options: EventRecorderOptions;
  readonly #folded = new Map<string, Folded>();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(client: KubeClient, logger: Logger, options: EventRecorderOptions = {}) {
    this.#client = client;
    this.#logger = logger;
    this.#options = options;
  }

  emit(target: EventTarget, type: EventType, reason: string, message: string): void {
    this.#options.onEmit?.({ target, type, reason, message });
    const key = `${target.kind}/${target.namespace ?? ""}/${target.name}/${
      target.uid ?? ""
    }/${type}/${reason}/${message}`;
    const folded = this.#folded.get(key);
    const now = Date.now();
    if (folded) {
      folded.count++;
      if (now - folded.lastWriteAt < (this.#options.foldIntervalMs ?? 5_000)) return;
      folded.lastWriteAt = now;
      folded.pending = folded.pending.then(() => this.#bump(folded));
      this.#track(folded.pending);
      return;
    }
    if (this.#folded.size > 5_000) this.#folded.clear();
    const namespace = target.namespace || "default";
    const suffix = `${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    const entry: Folded = {
      name: `${target.name}.${suffix}`,
      namespace,
      count: 1,
      written: 0,
      lastWriteAt: now,
      pending: Promise.resolve(),
    };
    this.#folded.set(key, entry);
    entry.pending = this.#create(entry, target, type, reason, message);
    this.#track(entry.pending);
  }

  /** Resolves when every write started so far has finished (shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    p.finally(() => this.#inFlight.delete(p));
  }

  async #create(entry: Folded, target: EventTarget, type: EventType, reason: string, message: string) {
    const time = nowSeconds();
    try {
      await this.#client.create(EVENTS, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: entry.name, namespace: entry.namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.name,
          ...(target.namespace ? { namespace: target.namespace } : {}),
          ...(target.uid ? { uid: target.uid } : {}),
        },
        reason,
        message: message.slice(0, 1024),
        type,
        count: 1,
        firstTimestamp: time,
        lastTimestamp: time,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: this.#options.instance ?? COMPONENT,
      });
      entry.written = 1;
    } catch (error) {
      this.#logger.debug("event not recorded", { reason, object: target.name, error: messageOf(error) });
    }
  }

  async #bump(entry: Folded): Promise<void> {
    if (entry.written === 0 || entry.written === entry.count) return;
    const count = entry.count;
    try {
      await this.#client.patch(EVENTS, entry.name, { count, lastTimestamp: nowSeconds() }, {
        patchType: "merge",
        namespace: entry.namespace,
      });
      entry.written = count;
    } catch (error) {
      this.#logger.debug("event not updated", { event: entry.name, error: messageOf(error) });
    }
  }
}

/** Builds an Event target for a Namespace. */
export function namespaceTarget(name: string, uid?: string): EventTarget {
  return { apiVersion: "v1", kind: "Namespace", name, uid };
}
