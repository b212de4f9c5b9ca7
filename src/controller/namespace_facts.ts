/**
 * @module
 * Gathers the {@linkcode NamespaceFacts} of one namespace from the operator's caches: the
 * namespace, which QuayIntegration selects it and that integration's credentials, its ImageStreams,
 * and the robot Secrets and service accounts the integration names. Memory only, no API call: the
 * webhook gathers facts on every Build admission, the reconcile and `quay-bridge plan` on every pass.
 */
import { DELETION_FAILING_SINCE_ANNOTATION, robotSecretName } from "../names.ts";
import type { IntegrationRegistry } from "./integration_registry.ts";
import type { NamespaceFacts, PlanSettings } from "./namespace_plan.ts";
import type { ImageStreamView, NamespaceView, SecretView, ServiceAccountView } from "./views.ts";

/** A cache read by key. */
export interface KeyedCache<T> {
  get(key: string): T | undefined;
}

/** The caches facts are read from (the operator's reflectors, or plain maps in tests). */
export interface NamespaceCaches {
  readonly namespaces: KeyedCache<NamespaceView>;
  /** ImageStreams by `<namespace>/<name>`, indexed by namespace. */
  readonly imageStreams: KeyedCache<ImageStreamView> & { keysBy(namespace: string): Iterable<string> };
  /** The operator's Secrets by `<namespace>/<name>`. */
  readonly secrets: KeyedCache<SecretView>;
  /** Configured service accounts by `<namespace>/<name>`. */
  readonly serviceAccounts: KeyedCache<ServiceAccountView>;
  readonly registry: Pick<IntegrationRegistry, "resolve" | "credentials">;
}

/** What the caches do not hold: the clock, the tunables and this process's memory of a failing deletion. */
export interface FactsContext {
  readonly now: number;
  readonly settings: PlanSettings;
  readonly deletionFailure?: { readonly since: number; readonly error: string } | undefined;
}

/**
 * Since when deleting the organization of `namespace` has failed: the earlier of the Namespace's
 * annotation (written by the apply, so it outlives restarts and leader changes) and this process's
 * memory. An unreadable annotation is ignored.
 */
export function deletionFailingSince(
  namespace: NamespaceView | undefined,
  remembered: number | undefined,
): number | undefined {
  const text = namespace?.annotations[DELETION_FAILING_SINCE_ANNOTATION];
  const annotated = text === undefined ? NaN : Date.parse(text);
  if (Number.isNaN(annotated)) return remembered;
  return remembered === undefined ? annotated : Math.min(annotated, remembered);
}

/** The facts of namespace `name` as the caches hold them now. */
export function readNamespaceFacts(
  caches: NamespaceCaches,
  name: string,
  context: FactsContext,
): NamespaceFacts {
  const namespace = caches.namespaces.get(name);
  const selection = namespace ? caches.registry.resolve(namespace) : { kind: "unmanaged" as const };
  const secrets = new Map<string, SecretView>();
  const serviceAccounts = new Map<string, ServiceAccountView>();
  const imageStreams: ImageStreamView[] = [];
  if (selection.kind === "managed") {
    const integration = selection.integration;
    for (const sa of integration.serviceAccounts) {
      const secretName = robotSecretName(sa.name, integration.clusterId);
      const secret = caches.secrets.get(`${name}/${secretName}`);
      if (secret) secrets.set(secretName, secret);
      const account = caches.serviceAccounts.get(`${name}/${sa.name}`);
      if (account) serviceAccounts.set(sa.name, account);
    }
    for (const key of caches.imageStreams.keysBy(name)) {
      const is = caches.imageStreams.get(key);
      if (is) imageStreams.push(is);
    }
    imageStreams.sort((a, b) => a.name.localeCompare(b.name));
  }
  return {
    namespace,
    selection,
    credentials: selection.kind === "managed" ? caches.registry.credentials(selection.key) : undefined,
    imageStreams,
    secrets,
    serviceAccounts,
    deletionFailingSince: deletionFailingSince(namespace, context.deletionFailure?.since),
    deletionError: context.deletionFailure?.error,
    now: context.now,
    settings: context.settings,
  };
}
