/**
 * @module
 * Wires the operator together, in dependency order: the integration registry and the Event
 * recorder; the caches (supervised list/watch of namespaces, ImageStreams, managed Builds, the
 * operator's own Secrets, the configured service accounts and both QuayIntegration versions), each
 * reporting its changes to a {@linkcode ChangeFeed}; the controllers (integration status, namespace,
 * build — leader only — and credentials, on every replica), each built on the caches; and last the
 * subscriptions that turn cache changes into keys. Watch handlers only enqueue keys. The caches run
 * on every replica (the webhook answers from them); the leader-only queues take keys only while
 * this replica leads.
 */
import type { IntegrationPolicy } from "./integration_spec.ts";
import type { KubeClient } from "./kube/client.ts";
import { Reflector } from "./kube/reflector.ts";
import {
  BUILDS,
  IMAGE_STREAMS,
  type KubeObject,
  LEGACY_QUAY_INTEGRATIONS,
  NAMESPACES,
  QUAY_INTEGRATIONS,
  SECRETS,
  SERVICE_ACCOUNTS,
} from "./kube/resources.ts";
import type { Logger } from "./log.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./names.ts";
import type { QuayCallObserver } from "./quay/client.ts";
import { type BuildContext, reconcileBuild } from "./controller/build_controller.ts";
import { Controller } from "./controller/controller.ts";
import { cacheFeeds, sameNamespaceFacts, subscribe } from "./controller/triggers.ts";
import { CredentialsController } from "./controller/credentials_controller.ts";
import { EventRecorder, type EventSink } from "./controller/events.ts";
import { IntegrationRegistry } from "./controller/integration_registry.ts";
import { type CredentialsCheck, reconcileIntegration } from "./controller/integration_status.ts";
import {
  type NamespaceContext,
  type NamespaceMemory,
  namespaceMemory,
  reconcileNamespace,
} from "./controller/namespace_controller.ts";
import type { NamespaceCaches } from "./controller/namespace_facts.ts";
import type { NamespaceOutcome, PlanSettings } from "./controller/namespace_plan.ts";
import { kubeNamespacePort } from "./controller/namespace_ports.ts";
import { kubeLeftBehindStore } from "./controller/left_behind.ts";
import { reconcileLeftBehind } from "./controller/organization_collector.ts";
import type { KnownOrganization } from "./controller/quay_plan.ts";
import { secretCursorStore } from "./controller/audit_cursor_store.ts";
import { type AuditPush, QuayAudit, spreadRereads } from "./controller/quay_audit.ts";
import type { Action, QueueObserver, WorkQueue } from "./controller/queue.ts";
import {
  type BuildView,
  type ImageStreamView,
  type NamespaceView,
  projectBuild,
  projectImageStream,
  projectNamespace,
  projectSecret,
  projectServiceAccount,
  type SecretView,
  type ServiceAccountView,
} from "./controller/views.ts";

/** Operator settings (from `src/config.ts`). */
export interface OperatorSettings {
  /** Re-read Quay for each synced namespace this often. @default 600_000 */
  resyncMs?: number;
  /**
   * Follow each integration's Quay audit log (`quay_audit.ts`): poll every `intervalMs` (0 = off),
   * resync a followed integration every `resyncMs`, keep the cursor in a Secret of `namespace`.
   */
  audit?: { intervalMs: number; resyncMs: number; namespace: string };
  /** Keep retrying an organization deletion this long. @default 300_000 */
  deletionBudgetMs?: number;
  /** Namespace reconciles at once. @default 16 */
  concurrency?: number;
  /** Quay client tuning. */
  quay?: { timeoutMs?: number; concurrency?: number };
  /** Pod name, for Events. */
  instance?: string;
  /** Server-side watch timeout. @default 300 */
  watchTimeoutSeconds?: number;
  /** The operator's namespace and the namespaces credentials Secrets may be read from. */
  policy?: IntegrationPolicy;
}

/** Observers for metrics. */
export interface OperatorObservers {
  onQuayCall?: QuayCallObserver;
  queue?: (name: string) => QueueObserver;
}

/** Options for {@linkcode Operator}. */
export interface OperatorOptions {
  kube: KubeClient;
  logger: Logger;
  settings?: OperatorSettings;
  observers?: OperatorObservers;
  /** Replaces the Event recorder (tests). */
  events?: EventSink;
}

/** Hears of the cache changes other features react to. */
export type CacheChangeListener = (change: CacheChange) => void;

/** Hears of tags pushed to Quay that the audit log names, per integration (to import them). */
export type AuditPushListener = (integrationKey: string, pushes: readonly AuditPush[]) => void;

/** A cache change: a namespace, an ImageStream added or removed in `namespace`, or an integration. */
export type CacheChange =
  | { readonly kind: "namespace" | "imageStream"; readonly namespace: string }
  | { readonly kind: "integration" };

/** A controller that joins the leader gate from outside the operator (the webhook certificates). */
export interface LeaderFollower {
  lead(): void;
  shutdown(graceMs: number): Promise<void>;
}

/** The running operator. */
export class Operator {
  readonly registry: IntegrationRegistry;
  readonly events: EventSink;
  readonly settings: PlanSettings;
  readonly namespaces: Reflector<NamespaceView>;
  readonly imageStreams: Reflector<ImageStreamView>;
  readonly secrets: Reflector<SecretView>;
  readonly serviceAccounts: Reflector<ServiceAccountView>;
  readonly builds: Reflector<BuildView>;
  readonly integrationsV1: Reflector<KubeObject>;
  readonly integrationsLegacy: Reflector<KubeObject>;
  /** The caches as the planner reads them. */
  readonly caches: NamespaceCaches;
  /** What the namespace reconcile remembers: outcomes, Quay mirrors, deletion failures. */
  readonly memory: NamespaceMemory = namespaceMemory();
  readonly integrationController: Controller;
  readonly namespaceController: Controller;
  readonly buildController: Controller;
  /** Retries the deletion of left-behind organizations (one key per QuayIntegration). */
  readonly collectorController: Controller;
  readonly credentials: CredentialsController;
  /** Follows the integrations' audit logs (undefined when turned off). */
  readonly audit: QuayAudit | undefined;
  readonly #log: Logger;
  readonly #observers: OperatorObservers | undefined;
  readonly #abort = new AbortController();
  /** Features outside the namespace decision (Quay push notifications), told of the same changes. */
  readonly #cacheListeners = new Set<CacheChangeListener>();
  readonly #pushListeners = new Set<AuditPushListener>();
  /**
   * Given to every Quay client: aborted when a shutdown's grace for in-flight reconciles ends, so a
   * reconcile stuck on a Quay that does not answer fails at once instead of holding the shutdown
   * until its request timeout.
   */
  readonly #reconciles = new AbortController();
  readonly #checks = new Map<string, CredentialsCheck>();
  readonly #tasks: Promise<void>[] = [];
  readonly #followers: LeaderFollower[] = [];
  /** Service account names any integration configures; the SA cache keeps only these. */
  #accountNames = new Set<string>();
  #leading = false;
  /** When the audit log last named drift, per integration. */
  readonly #driftAt = new Map<string, number>();
  /** The resync of an integration whose audit log is followed (0 without the audit log). */
  #auditedResyncMs = 0;
  /** Until when an integration's mirrors are being re-read after a gap in its audit log. */
  readonly #spreadUntil = new Map<string, number>();

  constructor(options: OperatorOptions) {
    const log = this.#log = options.logger;
    this.#observers = options.observers;
    const settings = options.settings ?? {};
    const kube = options.kube;
    const watchTimeoutSeconds = settings.watchTimeoutSeconds ?? 300;
    const resyncMs = settings.resyncMs ?? 600_000;
    this.settings = { resyncMs, deletionBudgetMs: settings.deletionBudgetMs ?? 300_000 };
    this.registry = new IntegrationRegistry({
      quay: settings.quay,
      onQuayCall: options.observers?.onQuayCall,
      // QuayReachable follows the calls: a flip is written within a second (bursts coalesce).
      onReachability: (key) => this.integrationController?.enqueue(key, 250),
      signal: this.#reconciles.signal,
      policy: settings.policy,
    });
    this.events = options.events ?? new EventRecorder(kube, log, { instance: settings.instance });

    // Caches, each reporting to a feed the controllers subscribe to below.
    const feeds = cacheFeeds();
    const cache = { logger: log, watchTimeoutSeconds };
    this.namespaces = new Reflector(kube, NAMESPACES, {
      ...cache,
      project: projectNamespace,
      onChange: feeds.namespaces.emit,
    });
    this.imageStreams = new Reflector(kube, IMAGE_STREAMS, {
      ...cache,
      project: projectImageStream,
      indexBy: (is) => is.namespace,
      onChange: feeds.imageStreams.emit,
    });
    this.secrets = new Reflector(kube, SECRETS, {
      ...cache,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      project: projectSecret,
      onChange: feeds.secrets.emit,
    });
    this.serviceAccounts = new Reflector(kube, SERVICE_ACCOUNTS, {
      ...cache,
      project: (o) => this.#accountNames.has(o.metadata?.name ?? "") ? projectServiceAccount(o) : undefined,
      onChange: feeds.serviceAccounts.emit,
    });
    this.builds = new Reflector(kube, BUILDS, {
      ...cache,
      project: projectBuild,
      onChange: feeds.builds.emit,
    });
    this.integrationsV1 = new Reflector(kube, QUAY_INTEGRATIONS, {
      ...cache,
      onChange: feeds.integrationsV1.emit,
    });
    this.integrationsLegacy = new Reflector(kube, LEGACY_QUAY_INTEGRATIONS, {
      ...cache,
      onChange: feeds.integrationsLegacy.emit,
    });
    this.caches = {
      namespaces: this.namespaces,
      imageStreams: this.imageStreams,
      secrets: this.secrets,
      serviceAccounts: this.serviceAccounts,
      registry: this.registry,
    };

    // Controllers, on the caches.
    const controller = (name: string, reconcile: (key: string) => Promise<Action>, concurrency: number) =>
      new Controller({
        name,
        reconcile,
        logger: log,
        concurrency,
        observer: options.observers?.queue?.(name),
      });
    const integrationController = this.integrationController = controller(
      "integration",
      (key) =>
        reconcileIntegration({
          kube,
          integrations: this.registry,
          outcomes: this.memory.outcomes,
          checks: this.#checks,
          events: this.events,
          logger: log,
          resyncMs,
          onCredentials: (key) => feeds.credentials.emit(key, undefined, undefined),
          audit: (key) => this.audit?.state(key),
          now: Date.now,
        }, key),
      2,
    );
    const collectorController = this.collectorController = controller(
      "collector",
      (key) =>
        reconcileLeftBehind({
          registry: this.registry,
          quay: (key) => this.registry.client(key),
          namespaces: this.namespaces,
          store: kubeLeftBehindStore(kube),
          events: this.events,
          logger: log,
          retryBaseMs: this.settings.deletionBudgetMs,
          onChange: (key) => integrationController.enqueue(key, 1_000),
          now: Date.now,
        }, key),
      1,
    );
    const namespacePort = kubeNamespacePort(kube);
    const nsContext: NamespaceContext = {
      caches: this.caches,
      kube: {
        ...namespacePort,
        recordLeftBehind: async (key, entry) => {
          await namespacePort.recordLeftBehind(key, entry);
          // The status lists it, and the collector's first attempt is due after one more budget.
          integrationController.enqueue(key, 1_000);
          collectorController.enqueue(key, 1_000);
        },
      },
      quay: (key) => this.registry.client(key),
      tokens: {
        rejected: (key, error) => {
          if (this.registry.rejectToken(key, error.message)) {
            feeds.credentials.emit(key, undefined, undefined);
          }
        },
        accepted: (key) => {
          if (this.registry.acceptToken(key, Date.now())) feeds.credentials.emit(key, undefined, undefined);
        },
      },
      events: this.events,
      logger: log,
      settings: this.settings,
      memory: this.memory,
      onOutcome: (_namespace, outcome: NamespaceOutcome | undefined) => {
        // Status counts follow outcomes; the integration queue coalesces bursts within a second.
        const key = outcome?.integrationKey;
        if (key) integrationController.enqueue(key, 1_000);
        else for (const e of this.registry.entries()) integrationController.enqueue(e.key, 1_000);
      },
      now: Date.now,
    };
    const audit = settings.audit;
    if (audit && audit.intervalMs > 0) {
      this.audit = new QuayAudit({
        integrations: () =>
          this.registry.entries().flatMap((e) => {
            const client = e.parsed.ok && this.registry.credentials(e.key)?.state === "ok"
              ? this.registry.client(e.key)
              : undefined;
            return client ? [{ key: e.key, client }] : [];
          }),
        onDrift: (key, organizations) => this.#drifted(key, organizations),
        onPush: (key, pushes) => {
          for (const listener of this.#pushListeners) listener(key, pushes);
        },
        onState: (key, state) => {
          integrationController.enqueue(key, 1_000);
          if (state.kind !== "unavailable") return;
          // Back to the plain resync: look again within one period, spread.
          for (const [mk, ns] of this.memory.namespaceOf) {
            if (mk.startsWith(`${key}|`)) namespaceController.enqueue(ns, Math.random() * resyncMs);
          }
        },
        store: secretCursorStore(kube, audit.namespace),
        // A cursor is stored only once the drift it covers is repaired (a restart in between reads it
        // again) — or after five minutes, so a namespace that cannot be repaired holds nothing back.
        pending: (key) => {
          if ((this.#spreadUntil.get(key) ?? 0) > Date.now()) return true;
          if (Date.now() - (this.#driftAt.get(key) ?? 0) > 300_000) return false;
          for (const [mk, known] of this.memory.organizations) {
            if (known.observedAt === 0 && mk.startsWith(`${key}|`)) return true;
          }
          return false;
        },
        logger: log,
        intervalMs: audit.intervalMs,
        trustMs: audit.resyncMs,
        now: Date.now,
      });
      Object.assign(nsContext, { audit: this.audit, auditedResyncMs: audit.resyncMs });
      this.#auditedResyncMs = audit.resyncMs;
    } else {
      this.audit = undefined;
    }
    const namespaceController = this.namespaceController = controller(
      "namespace",
      (key) => reconcileNamespace(nsContext, key),
      settings.concurrency ?? 16,
    );
    const buildContext: BuildContext = {
      kube,
      builds: this.builds,
      imageStreams: this.imageStreams,
      namespaces: this.namespaces,
      integrations: this.registry,
      events: this.events,
      logger: log,
    };
    const buildController = this.buildController = controller(
      "build",
      (key) => reconcileBuild(buildContext, key),
      4,
    );
    this.credentials = new CredentialsController({
      kube,
      registry: this.registry,
      logger: log,
      onChange: (key) => feeds.credentials.emit(key, undefined, undefined),
      observer: options.observers?.queue?.("credentials"),
    });

    // Subscriptions: which cache changes wake which controller.
    subscribe(feeds, {
      namespace: namespaceController,
      integration: integrationController,
      build: buildController,
      namespaces: () => this.namespaces.keys(),
      integrationChanged: (key, current) => {
        if (!this.registry.set(key, current)) return false;
        this.#configure();
        this.#tell({ kind: "integration" });
        // A changed policy or selection may let the collector go on (or stop it).
        collectorController.enqueue(key, 1_000);
        return true;
      },
    });
    feeds.namespaces.on((key, current, previous) => {
      if (this.#cacheListeners.size === 0 || (current && previous && sameNamespaceFacts(current, previous))) {
        return;
      }
      this.#tell({ kind: "namespace", namespace: key });
    });
    feeds.imageStreams.on((_key, current, previous) => {
      // Status updates (imports) change no repository.
      if (this.#cacheListeners.size === 0 || (current && previous)) return;
      const namespace = (current ?? previous)?.namespace;
      if (namespace) this.#tell({ kind: "imageStream", namespace });
    });
  }

  /**
   * Tells `listener` of every cache change other features react to (a namespace's facts, an
   * ImageStream added or removed, an integration); returns the unsubscribe.
   */
  onCacheChange(listener: CacheChangeListener): () => void {
    this.#cacheListeners.add(listener);
    return () => this.#cacheListeners.delete(listener);
  }

  /** Tells `listener` of the tags the audit log names as pushed; returns the unsubscribe. */
  onAuditPush(listener: AuditPushListener): () => void {
    this.#pushListeners.add(listener);
    return () => this.#pushListeners.delete(listener);
  }

  #tell(change: CacheChange): void {
    for (const listener of this.#cacheListeners) listener(change);
  }

  /** Aborted when the operator stops. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The namespace queue (tests wait on it). */
  get namespaceQueue(): WorkQueue {
    return this.namespaceController.queue;
  }

  /** Namespace outcomes, as last reconciled. */
  get outcomes(): ReadonlyMap<string, NamespaceOutcome> {
    return this.memory.outcomes;
  }

  /** Quay mirrors by `<integration key>|<organization>`. */
  get organizations(): Map<string, KnownOrganization> {
    return this.memory.organizations;
  }

  /**
   * Whether each QuayIntegration's Quay is reachable, by name: from the calls this replica made while
   * it leads (the freshest evidence), else from the `QuayReachable` condition the leader wrote.
   * Integrations with neither are left out.
   */
  quayReachability(): { integration: string; reachable: boolean }[] {
    const out: { integration: string; reachable: boolean }[] = [];
    for (const entry of this.registry.entries()) {
      const name = entry.object.metadata?.name ?? "";
      const reach = this.leading ? this.registry.reachability(entry.key) : undefined;
      if (reach) {
        out.push({ integration: name, reachable: reach.reachable });
        continue;
      }
      const conditions =
        ((entry.object.status ?? {}) as { conditions?: { type: string; status: string }[] }).conditions;
      const status = conditions?.find((c) => c.type === "QuayReachable")?.status;
      if (status === "True" || status === "False") {
        out.push({ integration: name, reachable: status === "True" });
      }
    }
    return out;
  }

  /** Starts the caches. Resolves when every cache has completed its first list. */
  async start(): Promise<void> {
    const signal = this.#abort.signal;
    // Integrations first: the service account cache's projection depends on them.
    for (const r of [this.integrationsV1, this.integrationsLegacy]) this.#tasks.push(r.run(signal));
    await Promise.all([this.integrationsV1.ready, this.integrationsLegacy.ready]);
    this.#configure();
    for (const r of [this.namespaces, this.imageStreams, this.secrets, this.serviceAccounts, this.builds]) {
      this.#tasks.push((r as Reflector<unknown>).run(signal));
    }
    await Promise.all([
      this.namespaces.ready,
      this.imageStreams.ready,
      this.secrets.ready,
      this.serviceAccounts.ready,
      this.builds.ready,
      this.credentials.ready(),
    ]);
    this.#log.info("caches synced", {
      namespaces: this.namespaces.size,
      imageStreams: this.imageStreams.size,
      integrations: this.registry.entries().length,
    });
  }

  /** True once every cache has listed once. */
  get cachesReady(): boolean {
    return [this.namespaces, this.imageStreams, this.secrets, this.serviceAccounts, this.builds].every((r) =>
      (r as Reflector<unknown>).isReady
    );
  }

  /** True while this replica leads. */
  get leading(): boolean {
    return this.#leading;
  }

  /** The metrics observer for a work queue named `name` (controllers wired outside the operator). */
  queueObserver(name: string): QueueObserver | undefined {
    return this.#observers?.queue?.(name);
  }

  /** Adds a controller that runs outside the operator but follows its leadership. */
  follow(follower: LeaderFollower): void {
    this.#followers.push(follower);
    if (this.leading) follower.lead();
  }

  /**
   * Starts reconciling (this replica leads): enqueues everything once. With the audit log followed,
   * namespaces wait for its first read (bounded by 5 s): what changed in Quay while no replica led
   * decides which organizations are re-read and which the cluster's evidence may stand for.
   */
  lead(): void {
    if (this.#leading) return;
    // Leading from now on, though the namespace queue may wait for the audit log's first read.
    this.#leading = true;
    this.integrationController.lead(this.registry.entries().map((e) => e.key));
    this.collectorController.lead(this.registry.entries().map((e) => e.key));
    const audit = this.audit;
    if (audit) {
      this.namespaceController.expectLead();
      const signal = this.#abort.signal;
      const first = audit.poll();
      const bounded = Promise.race([first, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      this.#tasks.push(
        bounded.then(() => {
          if (!signal.aborted) this.namespaceController.lead(this.namespaces.keys());
          return first;
        }).then(() => audit.run(signal)),
      );
    } else {
      this.namespaceController.lead(this.namespaces.keys());
    }
    this.buildController.lead(
      [...this.builds.keys()].filter((key) => {
        const build = this.builds.get(key);
        return build !== undefined && build.phase === "Complete" && !build.imported;
      }),
    );
    for (const follower of this.#followers) follower.lead();
  }

  /**
   * Stops the queues (finishing in-flight work within `graceMs`, then aborting its Quay calls), then
   * the caches.
   */
  async stop(graceMs = 10_000): Promise<void> {
    // The queues abort their reconciles' signal after the same grace; the Quay calls follow it.
    const grace = setTimeout(() => this.#reconciles.abort(), graceMs);
    try {
      await Promise.all([
        this.namespaceController.shutdown(graceMs),
        this.integrationController.shutdown(graceMs),
        this.buildController.shutdown(graceMs),
        this.collectorController.shutdown(graceMs),
        ...this.#followers.map((f) => f.shutdown(graceMs)),
      ]);
    } finally {
      clearTimeout(grace);
      this.#reconciles.abort();
    }
    if (this.events instanceof EventRecorder) await this.events.flush();
    this.#abort.abort();
    await this.credentials.stop(graceMs);
    await Promise.allSettled(this.#tasks);
    this.registry.close();
  }

  /** Organizations the audit log says were changed by hand: their mirrors are stale, their namespaces requeued. */
  #drifted(key: string, organizations: ReadonlySet<string> | "all"): void {
    const prefix = `${key}|`;
    if (organizations === "all") {
      this.#spreadRereads(key);
      return;
    }
    const keys = [...organizations].map((org) => `${prefix}${org}`);
    this.#driftAt.set(key, Date.now());
    const entry = this.registry.get(key);
    const ours = entry?.parsed.ok ? `${prefix}${entry.parsed.integration.organizationPrefix}_` : undefined;
    for (const mk of keys) {
      const known = this.memory.organizations.get(mk);
      if (known) known.observedAt = 0;
      // Not read yet (a restart): never inferred from the cluster. Only names this integration could give.
      else if (ours && mk.startsWith(ours)) this.memory.suspects.add(mk);
      const ns = this.memory.namespaceOf.get(mk);
      if (ns) this.namespaceController.enqueue(ns);
    }
  }

  /**
   * A gap in the audit log (more new entries than one poll pages through, as after a burst of new
   * projects, whose own creations fill the log): any organization may have changed. Every mirror of
   * the integration falls due within one plain `--resync`, spread, instead of all at once (which cost
   * three calls per namespace in one burst).
   */
  #spreadRereads(key: string): void {
    const now = Date.now();
    const window = this.settings.resyncMs;
    // The cursor is not stored before every mirror was read again: a restart in between reads all.
    this.#spreadUntil.set(key, now + window);
    const due = spreadRereads(this.memory.organizations, `${key}|`, {
      now,
      windowMs: window,
      resyncMs: this.#auditedResyncMs || window,
      random: Math.random,
    });
    for (const { mirror, delayMs } of due) {
      const ns = this.memory.namespaceOf.get(mirror);
      if (ns) this.namespaceController.enqueue(ns, delayMs);
    }
  }

  /** Follows integration changes: service account names to cache, credentials Secrets to watch. */
  #configure(): void {
    const names = new Set<string>();
    for (const entry of this.registry.entries()) {
      if (!entry.parsed.ok) continue;
      for (const sa of entry.parsed.integration.serviceAccounts) names.add(sa.name);
    }
    const grew = [...names].some((n) => !this.#accountNames.has(n));
    this.#accountNames = names;
    if (grew && this.serviceAccounts.isReady) this.serviceAccounts.relist();
    this.credentials.configure(this.#abort.signal);
  }
}
