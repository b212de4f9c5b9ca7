/**
 * @module
 * The durable list of Quay organizations left behind: a namespace was deleted, deleting its
 * organization failed for the whole `--deletion-budget`, and the namespace was released anyway. The
 * list lives in the status of the QuayIntegration that managed the namespace
 * (`status.leftBehindOrganizations`), so it survives restarts and leader changes and an admin sees it
 * with `oc describe`; the organization collector (`organization_collector.ts`) retries each entry
 * with backoff and removes it once the organization is gone.
 *
 * Only the apply writes an entry, for an organization quay-bridge was about to delete itself (policy
 * `Delete`, a namespace it managed): nothing is ever discovered in Quay by name, so an organization
 * quay-bridge did not create can never land on the list.
 */
import { ConflictError, KubeApiError } from "../errors.ts";
import { API_LEGACY } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import { LEGACY_QUAY_INTEGRATIONS, QUAY_INTEGRATIONS } from "../kube/resources.ts";

/** One organization left behind. Times are RFC 3339. */
export interface LeftBehindOrganization {
  readonly organization: string;
  /** The deleted namespace it belonged to. */
  readonly namespace: string;
  /** When it was left behind. */
  readonly since: string;
  /** Collection attempts so far. */
  readonly attempts: number;
  /** Not retried before this. */
  readonly nextAttemptAt: string;
  /** Why the last deletion failed. */
  readonly lastError: string;
}

/** Most entries kept on one QuayIntegration (a status must stay small); the oldest beyond go first. */
export const LEFT_BEHIND_LIMIT = 200;

/** The longest wait between two collection attempts of one organization. */
export const COLLECT_MAX_DELAY_MS = 3_600_000;

/** Delay before attempt `attempts + 1`: `baseMs` doubled per attempt, at most an hour. */
export function collectDelay(attempts: number, baseMs: number): number {
  return Math.min(COLLECT_MAX_DELAY_MS, baseMs * 2 ** Math.min(attempts, 20));
}

/** The entries in a QuayIntegration's status; malformed ones are dropped. */
export function readLeftBehind(status: unknown): LeftBehindOrganization[] {
  const list = (status as { leftBehindOrganizations?: unknown } | undefined)?.leftBehindOrganizations;
  if (!Array.isArray(list)) return [];
  const out: LeftBehindOrganization[] = [];
  for (const item of list) {
    if (!item || typeof item !== "object") continue;
    const e = item as Record<string, unknown>;
    if (typeof e.organization !== "string" || typeof e.namespace !== "string") continue;
    out.push({
      organization: e.organization,
      namespace: e.namespace,
      since: typeof e.since === "string" ? e.since : new Date(0).toISOString(),
      attempts: typeof e.attempts === "number" ? e.attempts : 0,
      nextAttemptAt: typeof e.nextAttemptAt === "string" ? e.nextAttemptAt : new Date(0).toISOString(),
      lastError: typeof e.lastError === "string" ? e.lastError : "",
    });
  }
  return out;
}

/** Splits an integration key `<apiVersion>/<name>` and names its resource type. */
function resourceOf(key: string) {
  const slash = key.lastIndexOf("/");
  const apiVersion = key.slice(0, slash);
  return {
    name: key.slice(slash + 1),
    type: apiVersion === API_LEGACY ? LEGACY_QUAY_INTEGRATIONS : QUAY_INTEGRATIONS,
  };
}

/** Reads and rewrites the list of one QuayIntegration. */
export interface LeftBehindStore {
  /**
   * Applies `change` to the current list and writes it, guarded by the resourceVersion it read (a
   * concurrent change is read again and `change` applied anew). `change` returning undefined writes
   * nothing. Returns false when the QuayIntegration is gone.
   */
  update(
    integrationKey: string,
    change: (entries: LeftBehindOrganization[]) => LeftBehindOrganization[] | undefined,
  ): Promise<boolean>;
}

/** The {@linkcode LeftBehindStore} over the Kubernetes API. */
export function kubeLeftBehindStore(kube: KubeClient): LeftBehindStore {
  return {
    async update(integrationKey, change) {
      const { name, type } = resourceOf(integrationKey);
      for (let attempt = 0; attempt < 5; attempt++) {
        const object = await kube.get(type, name);
        if (!object) return false;
        const next = change(readLeftBehind(object.status));
        if (next === undefined) return true;
        try {
          await kube.patch(type, name, {
            metadata: { resourceVersion: object.metadata?.resourceVersion },
            status: { leftBehindOrganizations: next.slice(-LEFT_BEHIND_LIMIT) },
          }, { patchType: "merge", subresource: "status" });
          return true;
        } catch (error) {
          if (!(error instanceof KubeApiError && error.status === 409)) throw error;
        }
      }
      throw new ConflictError(`QuayIntegration ${name} kept changing while its status was written`);
    },
  };
}
