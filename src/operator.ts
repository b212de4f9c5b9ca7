/**
 * @module
 * Wires the operator together: the caches (supervised list/watch of namespaces, ImageStreams,
 * managed Builds, the operator's own Secrets, the configured service accounts, both QuayIntegration
 * versions and each integration's credentials Secret), the work queues, and the reconcilers. Watch
 * handlers only enqueue keys. The caches run on every replica (the webhook answers from them); the
 * queues run only while this replica leads.
 */
import { messageOf } from "./errors.ts";
import type { IntegrationPolicy, IntegrationProblem } from "./integration.ts";
import type { KubeClient } from "./kube/client.ts";
import { Reflector } from "./kube/reflector.ts";
import {
  BUILDS,
  IMAGE_STREAMS,
  type KubeObject,
  LEGACY_QUAY_INTEGRATIONS,
  NAMESPACES,
  QUAY_INTEGRATIONS,
  type ResourceType,
  SECRETS,
  SERVICE_ACCOUNTS,
} from "./kube/resources.ts";
import type { Logger } from "./log.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./names.ts";
import type { QuayCallObserver } from "./quay/client.ts";
import { EventRecorder, type EventSink } from "./controller/events.ts";
import { type CredentialsCheck, reconcileIntegration } from "./controller/integration_controller.ts";
import { integrationKey, IntegrationRegistry } from "./controller/integrations.ts";
import {
  type NamespaceContext,
  type NamespaceOutcome,
  reconcileNamespace,
} from "./controller/namespace_controller.ts";
import type { KnownOrganization } from "./controller/quay_plan.ts";
import { type QueueObserver, WorkQueue } from "./controller/queue.ts";
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
import { type BuildContext, reconcileBuild } from "./controller/build_controller.ts";

/** Operator settings (from `src/config.ts`). */
export interface OperatorSettings {
  /** Re-read Quay for each synced namespace this often. @default 600_000 */
  resyncMs?: number;
  /** Keep retrying an organization deletion this long. @default 300_000 */
  deletionBudgetMs?: number;
  /** Namespace reconciles at once. @default 8 */
  concurrency?: number;
  /** Quay client tuning. */
  quay?: { timeoutMs?: number; maxAttempts?: number; concurrency?: number; retryBaseMs?: number };
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

interface CredentialsWatch {
  ref: string;
  abort: AbortController;
  reflector: Reflector<KubeObject>;
}

/** The running operator. */
export class Operator {
  readonly namespaces: Reflector<NamespaceView>;
  readonly imageStreams: Reflector<ImageStreamView>;
  readonly secrets: Reflector<SecretView>;
  readonly serviceAccounts: Reflector<ServiceAccountView>;
  readonly builds: Reflector<BuildView>;
  readonly integrationsV1: Reflector<KubeObject>;
  readonly integrationsLegacy: Reflector<KubeObject>;
  readonly registry: IntegrationRegistry;
  readonly outcomes = new Map<string, NamespaceOutcome>();
  readonly organizations = new Map<string, KnownOrganization>();
  readonly events: EventSink;
  readonly namespaceQueue: WorkQueue;
  readonly integrationQueue: WorkQueue;
  readonly buildQueue: WorkQueue;
  readonly #options: OperatorOptions;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #credentialWatches = new Map<string, CredentialsWatch>();
  readonly #checks = new Map<string, CredentialsCheck>();
  readonly #deletionFailures = new Map<string, number>();
  readonly #tasks: Promise<void>[] = [];
  /** Service account names any integration configures; the SA cache keeps only these. */
  #accountNames = new Set<string>();
  #leading = false;

  constructor(options: OperatorOptions) {
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#options = options;
    const log = this.#log = options.logger;
    const settings = options.settings ?? {};
    const kube = options.kube;
    const watchTimeoutSeconds = settings.watchTimeoutSeconds ?? 300;
    this.registry = new IntegrationRegistry({
      quay: settings.quay,
      onQuayCall: options.observers?.onQuayCall,
      signal: this.#abort.signal,
      policy: settings.policy,
    });
    this.events = options.events ?? new EventRecorder(kube, log, { instance: settings.instance });

    const queue = (
      name: string,
      reconcile: (key: string, signal: AbortSignal) => Promise<import("./controller/queue.ts").Action>,
      concurrency: number,
    ) =>
      new WorkQueue({
        name,
        reconcile,
        logger: log,
        concurrency,
        observer: options.observers?.queue?.(name),
      });

    const nsContext: NamespaceContext = {
      kube,
      get namespaces() {
        return self.namespaces;
      },
      get imageStreams() {
        return self.imageStreams;
      },
      get secrets() {
        return self.secrets;
      },
      get serviceAccounts() {
        return self.serviceAccounts;
      },
      integrations: this.registry,
      events: this.events,
      logger: log,
      settings: {
        resyncMs: settings.resyncMs ?? 600_000,
        deletionBudgetMs: settings.deletionBudgetMs ?? 300_000,
      },
      organizations: this.organizations,
      outcomes: this.outcomes,
      deletionFailures: this.#deletionFailures,
      onOutcome: (_namespace, outcome) => {
        // Status counts follow outcomes; the integration queue coalesces bursts within a second.
        const key = outcome?.integrationKey;
        if (key) this.integrationQueue.add(key, 1_000);
        else for (const e of this.registry.entries()) this.integrationQueue.add(e.key, 1_000);
      },
      now: Date.now,
    };
    this.namespaceQueue = queue(
      "namespace",
      (key) => reconcileNamespace(nsContext, key),
      settings.concurrency ?? 8,
    );
    this.integrationQueue = queue("integration", (key) =>
      reconcileIntegration({
        kube,
        integrations: this.registry,
        outcomes: this.outcomes,
        checks: this.#checks,
        events: this.events,
        logger: log,
        resyncMs: settings.resyncMs ?? 600_000,
        now: Date.now,
      }, key), 2);
    const buildContext: BuildContext = {
      kube,
      get builds() {
        return self.builds;
      },
      get imageStreams() {
        return self.imageStreams;
      },
      get namespaces() {
        return self.namespaces;
      },
      integrations: this.registry,
      events: this.events,
      logger: log,
    };
    this.buildQueue = queue("build", (key) => reconcileBuild(buildContext, key), 4);

    const enqueueNamespace = (name: string) => this.#leading && this.namespaceQueue.add(name);
    this.namespaces = new Reflector(kube, NAMESPACES, {
      logger: log,
      watchTimeoutSeconds,
      project: projectNamespace,
      onChange: (key, current, previous) => {
        if (current && previous && sameNamespaceFacts(current, previous)) return;
        enqueueNamespace(key);
      },
    });
    this.imageStreams = new Reflector(kube, IMAGE_STREAMS, {
      logger: log,
      watchTimeoutSeconds,
      project: projectImageStream,
      indexBy: (is) => is.namespace,
      // Only additions and removals change what Quay needs; status updates (imports) do not.
      onChange: (_key, current, previous) => {
        if (current && previous) return;
        const ns = (current ?? previous)?.namespace;
        if (ns) enqueueNamespace(ns);
      },
    });
    this.secrets = new Reflector(kube, SECRETS, {
      logger: log,
      watchTimeoutSeconds,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      project: projectSecret,
      onChange: (_key, current, previous) => {
        const ns = (current ?? previous)?.namespace;
        if (ns) enqueueNamespace(ns);
      },
    });
    this.serviceAccounts = new Reflector(kube, SERVICE_ACCOUNTS, {
      logger: log,
      watchTimeoutSeconds,
      project: (o) => this.#accountNames.has(o.metadata?.name ?? "") ? projectServiceAccount(o) : undefined,
      onChange: (_key, current, previous) => {
        if (
          current && previous && JSON.stringify(current.secrets) === JSON.stringify(previous.secrets) &&
          JSON.stringify(current.imagePullSecrets) === JSON.stringify(previous.imagePullSecrets)
        ) return;
        const ns = (current ?? previous)?.namespace;
        if (ns) enqueueNamespace(ns);
      },
    });
    this.builds = new Reflector(kube, BUILDS, {
      logger: log,
      watchTimeoutSeconds,
      project: projectBuild,
      onChange: (key, current) => {
        // Only a managed, completed, not yet imported Build needs work (upstream defect D6).
        if (this.#leading && current && current.phase === "Complete" && !current.imported) {
          this.buildQueue.add(key);
        }
      },
    });
    const onIntegration =
      (type: ResourceType) =>
      (_key: string, current: KubeObject | undefined, previous: KubeObject | undefined) => {
        const object = (current ?? previous) as KubeObject;
        const key = integrationKey(type.group + "/" + type.version, object.metadata.name ?? "");
        const changed = this.registry.set(key, current as never);
        if (!changed) return;
        this.#configure();
        if (this.#leading) {
          this.integrationQueue.add(key);
          this.#enqueueAllNamespaces();
        }
      };
    this.integrationsV1 = new Reflector(kube, QUAY_INTEGRATIONS, {
      logger: log,
      watchTimeoutSeconds,
      onChange: onIntegration(QUAY_INTEGRATIONS),
    });
    this.integrationsLegacy = new Reflector(kube, LEGACY_QUAY_INTEGRATIONS, {
      logger: log,
      watchTimeoutSeconds,
      onChange: onIntegration(LEGACY_QUAY_INTEGRATIONS),
    });
  }

  /** Aborted when the operator stops. */
  get signal(): AbortSignal {
    return this.#abort.signal;
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
      ...[...this.#credentialWatches.values()].map((w) => w.reflector.ready),
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

  /** Starts reconciling (this replica leads): enqueues everything once. */
  lead(): void {
    if (this.#leading) return;
    this.#leading = true;
    for (const e of this.registry.entries()) this.integrationQueue.add(e.key);
    this.#enqueueAllNamespaces();
    for (const [key, build] of this.#buildEntries()) {
      if (build.phase === "Complete" && !build.imported) this.buildQueue.add(key);
    }
  }

  /** Stops the queues (finishing in-flight work within `graceMs`), then the caches. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#leading = false;
    await Promise.all([
      this.namespaceQueue.shutdown(graceMs),
      this.integrationQueue.shutdown(graceMs),
      this.buildQueue.shutdown(graceMs),
    ]);
    if ("flush" in this.events) await (this.events as EventRecorder).flush();
    this.#abort.abort();
    for (const w of this.#credentialWatches.values()) w.abort.abort();
    await Promise.allSettled(this.#tasks);
    this.registry.close();
  }

  *#buildEntries(): Generator<[string, BuildView]> {
    for (const key of this.builds.keys()) {
      const b = this.builds.get(key);
      if (b) yield [key, b];
    }
  }

  #enqueueAllNamespaces(): void {
    for (const name of this.namespaces.keys()) this.namespaceQueue.add(name, 0, "background");
  }

  /** Follows integration changes: service account names to cache, credentials Secrets to watch. */
  #configure(): void {
    const names = new Set<string>();
    const wanted = new Map<string, string>();
    for (const entry of this.registry.entries()) {
      if (!entry.parsed.ok) continue;
      for (const sa of entry.parsed.integration.serviceAccounts) names.add(sa.name);
      const ref = entry.parsed.integration.credentialsSecret;
      wanted.set(entry.key, `${ref.namespace}/${ref.name}/${ref.key}`);
    }
    const grew = [...names].some((n) => !this.#accountNames.has(n));
    this.#accountNames = names;
    if (grew && this.serviceAccounts.isReady) this.serviceAccounts.relist();

    for (const [key, watch] of this.#credentialWatches) {
      if (wanted.get(key) !== watch.ref) {
        watch.abort.abort();
        this.#credentialWatches.delete(key);
      }
    }
    for (const [key, ref] of wanted) {
      if (this.#credentialWatches.has(key)) continue;
      this.#watchCredentials(key, ref);
    }
  }

  #watchCredentials(key: string, ref: string): void {
    const [namespace = "", name = "", dataKey = "token"] = ref.split("/");
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, this.#abort.signal]);
    const update = (secret: KubeObject | undefined) => {
      let state: { state: "ok"; token: string } | { state: "missing"; problem: IntegrationProblem };
      if (!secret) {
        state = {
          state: "missing",
          problem: {
            reason: "SecretNotFound",
            message: `Secret ${namespace}/${name} holding the Quay token was not found`,
          },
        };
      } else {
        const data = (secret.data ?? {}) as Record<string, string>;
        const raw = data[dataKey];
        const token = raw === undefined ? undefined : decodeToken(raw);
        state = token ? { state: "ok", token } : {
          state: "missing",
          problem: {
            reason: "SecretKeyMissing",
            message:
              `Secret ${namespace}/${name} has no non-empty key "${dataKey}" (spec.credentialsSecret.key)`,
          },
        };
      }
      if (this.registry.setCredentials(key, state) && this.#leading) {
        this.integrationQueue.add(key);
        this.#enqueueAllNamespaces();
      }
    };
    const reflector = new Reflector<KubeObject>(this.#options.kube, SECRETS, {
      logger: this.#log,
      namespace,
      fieldSelector: `metadata.name=${name}`,
      onChange: (_k, current) => update(current),
      onReady: () => {
        if (reflector.size === 0) update(undefined);
      },
    });
    this.#credentialWatches.set(key, { ref, abort, reflector });
    this.#tasks.push(
      reflector.run(signal).catch((e) => this.#log.error("credentials watch ended", { error: messageOf(e) })),
    );
  }
}

function decodeToken(base64: string): string | undefined {
  try {
    const text = new TextDecoder().decode(Uint8Array.fromBase64(base64)).trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}

function sameNamespaceFacts(a: NamespaceView, b: NamespaceView): boolean {
  return a.deleting === b.deleting && JSON.stringify(a.finalizers) === JSON.stringify(b.finalizers) &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels) &&
    a.annotations["openshift.io/sa.scc.mcs"] === b.annotations["openshift.io/sa.scc.mcs"];
}
