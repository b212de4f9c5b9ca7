/**
 * @module
 * The port through which the admission webhook asks the rest of the operator about a namespace.
 * The webhook answers from memory: `target` must be synchronous and cheap (a map lookup over the
 * caches), because it runs on every Build admission. Only a namespace that is selected but not yet
 * provisioned costs more, through `provision`, which the webhook calls with a deadline inside the
 * apiserver's webhook timeout.
 */

/**
 * Where Builds of a namespace push, as far as the operator knows right now. `outcome` is the reason
 * of the namespace's outcome it was read from (`Synced`, `IntegrationInvalid`, …): the same the
 * namespace reconcile records and `quay-bridge plan` prints.
 */
export type NamespaceTarget =
  /**
   * No valid QuayIntegration selects the namespace: its Builds are left alone. `warning` (an invalid
   * QuayIntegration would select it) is returned to the client as an admission warning.
   */
  | {
    readonly state: "unmanaged";
    readonly warning?: string | undefined;
    readonly outcome?: string | undefined;
  }
  /** Selected and provisioned: Builds are rewritten to push to Quay. */
  | {
    readonly state: "ready";
    /** Registry `host[:port]` used in pull specs, e.g. `quay.example.com` or `127.0.0.1:8443`. */
    readonly registryHost: string;
    /** Quay organization mirroring the namespace, `<prefix>_<namespace>`. */
    readonly organization: string;
    /** The builder robot's dockerconfigjson Secret in the namespace, `builder-quay-<clusterid>`. */
    readonly pushSecretName: string;
    readonly outcome?: string | undefined;
  }
  /** Selected, but the organization, robot or Secret is not there yet. */
  | { readonly state: "pending"; readonly reason: string; readonly outcome?: string | undefined };

/** What the webhook needs from the operator. */
export interface AdmissionPort {
  /** The namespace's target from memory. Must not block or call an API. */
  target(namespace: string): NamespaceTarget;
  /**
   * Provisions a pending namespace now (organization, robots, Secrets) and returns its new target.
   * Called only when `target` said `pending`; concurrent admissions for one namespace share a single
   * call. `signal` aborts when every admission waiting for it has given up; the work may go on in the
   * background (the controllers will finish it), but the answer is no longer awaited.
   */
  provision(namespace: string, signal: AbortSignal): Promise<NamespaceTarget>;
}
