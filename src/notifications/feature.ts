/**
 * @module
 * Quay push notifications, assembled: the notification Secrets cache, the receiver (served by the
 * webhook server on every replica), the tag import queue (on every replica, fed by its receiver),
 * and the notification controller's queue (keyed by namespace, fed only while this replica leads).
 * The operator calls the `*Changed` methods from its watch handlers.
 *
 * ```ts
 * const notifications = new NotificationFeature({ kube, logger, events, registry, namespaces: () => op.namespaces, imageStreams: () => op.imageStreams, operatorNamespace: "quay-bridge", resyncMs: 600_000 });
 * await notifications.start(signal);   // every replica
 * notifications.lead();                 // the leader
 * const handler = (req) => isNotificationPath(req) ? notifications.handler(req) : webhookApp.fetch(req);
 * ```
 */
import { API_V1, type Integration } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Reflector } from "../kube/reflector.ts";
import type { Logger } from "../log.ts";
import { organizationName } from "../names.ts";
import type { EventSink } from "../controller/events.ts";
import type { CacheChange } from "../operator.ts";
import { integrationKey, type IntegrationRegistry } from "../controller/integration_registry.ts";
import { type QueueObserver, WorkQueue } from "../controller/queue.ts";
import type { ImageStreamView, NamespaceView } from "../controller/views.ts";
import { RECEIVER_PATH_PREFIX } from "./auth.ts";
import { type NamespaceTarget, reconcileNamespaceNotifications } from "./controller.ts";
import { reconcileTagImport, tagKey } from "./importer.ts";
import type { RepoPushEvent } from "./payload.ts";
import { createNotificationReceiver, type DeliveryRouting, type ReceiverOutcome } from "./receiver.ts";
import { NotificationSecrets } from "./secret_store.ts";

/** True when a request is for the notification receiver. */
export function isNotificationRequest(request: Request): boolean {
  return new URL(request.url).pathname.startsWith(RECEIVER_PATH_PREFIX);
}

/** Options for {@linkcode NotificationFeature}. */
export interface NotificationFeatureOptions {
  kube: KubeClient;
  logger: Logger;
  events: EventSink;
  registry: IntegrationRegistry;
  namespaces: () => Reflector<NamespaceView>;
  imageStreams: () => Reflector<ImageStreamView>;
  /** Namespace of the notification Secrets (the operator's). */
  operatorNamespace: string;
  /** Re-check each namespace's notifications this often. */
  resyncMs: number;
  /** Queue observer for metrics, by queue name. */
  queueObserver?: (name: string) => QueueObserver;
  /** Receiver outcomes, for metrics. */
  onRequest?: (outcome: ReceiverOutcome) => void;
  /** Receiver limits. */
  receiver?: { maxBodyBytes?: number; ratePerSecond?: number; burst?: number };
}

/** Quay push notifications of one operator process. */
export class NotificationFeature {
  /** Serves `/quay-notifications/...`. */
  readonly handler: (request: Request) => Promise<Response>;
  readonly secrets: NotificationSecrets;
  readonly importQueue: WorkQueue;
  readonly controllerQueue: WorkQueue;
  readonly #options: NotificationFeatureOptions;
  readonly #cleaned = new Set<string>();
  #leading = false;
  #run: Promise<void> | undefined;

  constructor(options: NotificationFeatureOptions) {
    this.#options = options;
    const log = options.logger.with({ component: "notifications" });
    this.secrets = new NotificationSecrets({
      kube: options.kube,
      namespace: options.operatorNamespace,
      logger: log,
      onChange: (integration) => this.#enqueueIntegration(integration),
    });
    this.importQueue = new WorkQueue({
      name: "notification-import",
      logger: log,
      concurrency: 4,
      observer: options.queueObserver?.("notification-import"),
      reconcile: (key) =>
        reconcileTagImport({
          kube: options.kube,
          integrationFor: (ns) => this.#managing(ns)?.integration,
          events: options.events,
          logger: log,
        }, key),
    });
    this.controllerQueue = new WorkQueue({
      name: "notification",
      logger: log,
      concurrency: 2,
      observer: options.queueObserver?.("notification"),
      reconcile: async (namespace) =>
        (await reconcileNamespaceNotifications({
          target: (ns) => this.#target(ns),
          ensureSecret: (name) => this.secrets.ensure(name),
          hadNotifications: (name) => this.secrets.has(name),
          logger: log,
          resyncMs: options.resyncMs,
          cleaned: this.#cleaned,
        }, namespace)).action,
    });
    this.handler = createNotificationReceiver({
      port: {
        secret: (name) => {
          const integration = this.#integration(name);
          return integration?.notifications ? this.secrets.get(name) : undefined;
        },
        deliver: (name, event) => this.#deliver(name, event),
      },
      logger: log,
      onRequest: options.onRequest,
      ...options.receiver,
    });
  }

  /** Starts the Secrets cache; resolves when it has listed once (or `signal` aborted). */
  async start(signal: AbortSignal): Promise<void> {
    this.#run = this.secrets.run(signal);
    // A shutdown during start-up must not wait for a list that will never complete.
    const aborted = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([this.secrets.ready, aborted]);
  }

  /** This replica leads: reconcile every namespace's notifications. */
  lead(): void {
    this.#leading = true;
    this.#enqueueAll();
  }

  /** Routes an operator cache change. */
  onCacheChange(change: CacheChange): void {
    if (change.kind === "namespace") this.namespaceChanged(change.namespace);
    else if (change.kind === "imageStream") this.imageStreamChanged(change.namespace);
    else this.integrationsChanged();
  }

  /** A namespace changed (labels, deletion). */
  namespaceChanged(name: string): void {
    if (this.#leading) this.controllerQueue.add(name);
  }

  /** An ImageStream of `namespace` was added or removed. */
  imageStreamChanged(namespace: string): void {
    // A little later: the namespace controller creates the repository first.
    if (this.#leading) this.controllerQueue.add(namespace, 1_000);
  }

  /** Some QuayIntegration changed. */
  integrationsChanged(): void {
    this.#enqueueAll();
  }

  /** Stops the queues (in-flight work gets `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    this.#leading = false;
    await Promise.all([this.importQueue.shutdown(graceMs), this.controllerQueue.shutdown(graceMs)]);
    await this.#run?.catch(() => {});
  }

  #enqueueAll(): void {
    if (!this.#leading) return;
    for (const name of this.#options.namespaces().keys()) this.controllerQueue.add(name);
  }

  #enqueueIntegration(name: string): void {
    if (!this.#leading) return;
    for (const ns of this.#options.namespaces().values()) {
      const r = this.#options.registry.resolve(ns);
      if (r.kind === "managed" && r.integration.name === name) this.controllerQueue.add(ns.name);
    }
  }

  #integration(name: string): Integration | undefined {
    const entry = this.#options.registry.get(integrationKey(API_V1, name));
    return entry?.parsed.ok ? entry.parsed.integration : undefined;
  }

  /** The integration managing a live namespace, with its registry key. */
  #managing(namespace: string): { key: string; integration: Integration } | undefined {
    const ns = this.#options.namespaces().get(namespace);
    if (!ns || ns.deleting) return undefined;
    const r = this.#options.registry.resolve(ns);
    return r.kind === "managed" ? { key: r.key, integration: r.integration } : undefined;
  }

  #target(namespace: string): NamespaceTarget | undefined {
    const managing = this.#managing(namespace);
    if (!managing || managing.integration.apiVersion !== API_V1) return undefined;
    const credentials = this.#options.registry.credentials(managing.key);
    const client = credentials?.state === "ok" ? this.#options.registry.client(managing.key) : undefined;
    if (!client) return undefined;
    const streams = this.#options.imageStreams();
    const names = new Set<string>();
    for (const key of streams.keysBy(namespace)) {
      const is = streams.get(key);
      if (is) names.add(is.name);
    }
    return { namespace, integration: managing.integration, client, imageStreams: names };
  }

  /**
   * Tags pushed to Quay that the audit log named (`controller/quay_audit.ts`), for the integration
   * under registry key `key`: queued as a delivery's would be — only repositories of namespaces the
   * integration manages that have an ImageStream of the name — whether notifications are on or not.
   * Returns how many were queued.
   */
  importPushed(
    key: string,
    pushes: readonly { organization: string; repository: string; tag: string }[],
  ): number {
    const entry = this.#options.registry.get(key);
    if (!entry?.parsed.ok) return 0;
    const integration = entry.parsed.integration;
    const prefix = `${integration.organizationPrefix}_`;
    let queued = 0;
    for (const push of pushes) {
      if (!push.organization.startsWith(prefix)) continue;
      const namespace = push.organization.slice(prefix.length);
      if (organizationName(integration.organizationPrefix, namespace) !== push.organization) continue;
      if (this.#managing(namespace)?.key !== key) continue;
      if (!this.#options.imageStreams().get(`${namespace}/${push.repository}`)) continue;
      this.importQueue.add(tagKey({ namespace, imageStream: push.repository, tag: push.tag }));
      queued++;
    }
    return queued;
  }

  #deliver(name: string, event: RepoPushEvent): DeliveryRouting {
    const integration = this.#integration(name);
    if (!integration?.notifications) {
      return { kind: "ignored", reason: "notifications are off for this integration" };
    }
    const prefix = `${integration.organizationPrefix}_`;
    if (!event.namespace.startsWith(prefix)) {
      return { kind: "ignored", reason: "the organization is not one of this integration's" };
    }
    const namespace = event.namespace.slice(prefix.length);
    const managing = this.#managing(namespace);
    if (!managing || managing.integration.name !== name || managing.integration.apiVersion !== API_V1) {
      return { kind: "ignored", reason: "the namespace is not managed by this integration" };
    }
    if (organizationName(integration.organizationPrefix, namespace) !== event.namespace) {
      return { kind: "ignored", reason: "the organization is not one of this integration's" };
    }
    if (!this.#options.imageStreams().get(`${namespace}/${event.name}`)) {
      return { kind: "ignored", reason: "no ImageStream for this repository" };
    }
    for (const tag of event.updatedTags) {
      this.importQueue.add(tagKey({ namespace, imageStream: event.name, tag }));
    }
    return { kind: "queued", namespace, imageStream: event.name, tags: event.updatedTags };
  }
}
