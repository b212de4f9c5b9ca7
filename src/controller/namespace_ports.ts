/**
 * @module
 * The narrow ports a namespace reconcile applies its plan through — just the Kubernetes writes and
 * the Quay calls it makes — and their implementation over the Kubernetes client. The reconcile tests
 * script these ports; the operator passes the real clients.
 *
 * Writes are guarded by what the plan was made from (a resourceVersion, or a JSON Patch `test` of
 * the list being changed), so a concurrent change by someone else fails the write: the port turns
 * that into a {@linkcode ConflictError}, the pass ends, and the next pass decides on fresh caches.
 */
import { ConflictError, KubeApiError, TerminalError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { NAMESPACES, SECRETS, SERVICE_ACCOUNTS } from "../kube/resources.ts";
import {
  DELETION_FAILING_SINCE_ANNOTATION,
  FINALIZER,
  LEGACY_FINALIZER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  ROTATED_AT_ANNOTATION,
  ROTATION_HANDLED_ANNOTATION,
} from "../names.ts";
import type { QuayClient } from "../quay/client.ts";
import type { NamespaceView, ServiceAccountView } from "./views.ts";
import { kubeLeftBehindStore, type LeftBehindOrganization } from "./left_behind.ts";

/** The Quay calls a namespace reconcile makes. */
export type QuayPort = Pick<
  QuayClient,
  | "getOrganization"
  | "createOrganization"
  | "deleteOrganization"
  | "listRobots"
  | "getRobot"
  | "createRobot"
  | "regenerateRobotToken"
  | "listPrototypes"
  | "createPrototype"
  | "updatePrototype"
  | "listRepositories"
  | "createRepository"
  | "deleteRepository"
  | "setRepositoryPermission"
>;

/** A robot Secret to write. */
export interface RobotSecret {
  readonly namespace: string;
  readonly name: string;
  /** Base64 `.dockerconfigjson`. */
  readonly dockerConfig: string;
  /** The QuayIntegration it belongs to (an annotation). */
  readonly integration: string;
  /** When its token was issued (RFC 3339, an annotation rotation counts from). */
  readonly rotatedAt: string;
  /** The namespace's rotation request its token answers (an annotation), if any. */
  readonly rotationHandled?: string | undefined;
}

/** The Kubernetes writes a namespace reconcile makes. */
export interface NamespaceKubePort {
  /** Puts our finalizer on the namespace (replacing the predecessor's). */
  addFinalizer(ns: NamespaceView): Promise<void>;
  /** Removes our finalizer and the predecessor's. */
  releaseFinalizer(ns: NamespaceView): Promise<void>;
  /**
   * Records on the deleting Namespace since when (ms since epoch) deleting its organization fails
   * (annotation `quay.redhat.com/deletion-failing-since`), so the budget outlives this process.
   */
  markDeletionFailing(ns: NamespaceView, since: number): Promise<void>;
  /**
   * Lists an organization given up on in the QuayIntegration's `status.leftBehindOrganizations`
   * (replacing an entry of the same organization), for the collector to retry.
   */
  recordLeftBehind(integrationKey: string, entry: LeftBehindOrganization): Promise<void>;
  /**
   * Creates the Secret. One of that name without our label (the predecessor's) is adopted when it
   * has the dockerconfigjson type: `"adopted"`. Any other type is a terminal `SecretConflict`.
   */
  createSecret(secret: RobotSecret): Promise<"created" | "adopted">;
  /** Replaces the data of the Secret last seen at `resourceVersion`. */
  updateSecret(secret: RobotSecret, resourceVersion: string): Promise<void>;
  /** Adds the Secret to the account's `secrets` and `imagePullSecrets`, as last seen. */
  linkSecret(account: ServiceAccountView, secret: string): Promise<void>;
  /** Sets the namespace's annotation recording what was synced (`sync_evidence.ts`). */
  recordSynced?(ns: NamespaceView, annotation: string, digest: string): Promise<void>;
}

function secretObject(secret: RobotSecret, resourceVersion?: string) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: secret.name,
      namespace: secret.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: {
        "quay.redhat.com/integration": secret.integration,
        [ROTATED_AT_ANNOTATION]: secret.rotatedAt,
        ...(secret.rotationHandled === undefined
          ? {}
          : { [ROTATION_HANDLED_ANNOTATION]: secret.rotationHandled }),
      },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": secret.dockerConfig },
  };
}

/**
 * JSON Patch with `test` operations: a 422 answer means a tested list changed since it was read (the
 * API server reports a failed test as an invalid request).
 */
async function patchTested(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof KubeApiError && (error.status === 422 || error.status === 409)) {
      throw new ConflictError(`${what} changed while it was patched`, { cause: error });
    }
    throw error;
  }
}

/** The {@linkcode NamespaceKubePort} over the Kubernetes API. */
export function kubeNamespacePort(kube: KubeClient): NamespaceKubePort {
  const leftBehind = kubeLeftBehindStore(kube);
  return {
    async addFinalizer(ns) {
      const wanted = [...ns.finalizers.filter((f) => f !== LEGACY_FINALIZER && f !== FINALIZER), FINALIZER];
      if (ns.finalizers.length === 0) {
        // JSON Patch cannot test an absent list; the resourceVersion precondition guards the write instead.
        await patchTested(`Namespace ${ns.name}`, () =>
          kube.patch(NAMESPACES, ns.name, {
            metadata: { resourceVersion: ns.resourceVersion, finalizers: wanted },
          }, { patchType: "merge" }));
        return;
      }
      await patchTested(`Namespace ${ns.name}`, () =>
        kube.patch(NAMESPACES, ns.name, [
          { op: "test", path: "/metadata/finalizers", value: ns.finalizers },
          { op: "replace", path: "/metadata/finalizers", value: wanted },
        ], { patchType: "json" }));
    },

    async releaseFinalizer(ns) {
      const ops: unknown[] = [];
      // Highest index first, so each removal leaves the indexes of the others intact.
      for (let i = ns.finalizers.length - 1; i >= 0; i--) {
        const f = ns.finalizers[i];
        if (f !== FINALIZER && f !== LEGACY_FINALIZER) continue;
        ops.push({ op: "test", path: `/metadata/finalizers/${i}`, value: f });
        ops.push({ op: "remove", path: `/metadata/finalizers/${i}` });
      }
      if (ops.length === 0) return;
      await patchTested(
        `Namespace ${ns.name}`,
        () => kube.patch(NAMESPACES, ns.name, ops, { patchType: "json" }),
      );
    },

    async markDeletionFailing(ns, since) {
      // A merge patch of one annotation: nothing else on the Namespace can be overwritten by it.
      await kube.patch(NAMESPACES, ns.name, {
        metadata: { annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: new Date(since).toISOString() } },
      }, { patchType: "merge" });
    },

    async recordLeftBehind(integrationKey, entry) {
      await leftBehind.update(integrationKey, (list) => [
        ...list.filter((e) => e.organization !== entry.organization),
        entry,
      ]);
    },

    async createSecret(secret) {
      try {
        await kube.create(SECRETS, secretObject(secret));
        return "created";
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 409)) throw error;
      }
      // A Secret by that name without our label (e.g. made by the predecessor): adopt it.
      const existing = await kube.get(SECRETS, secret.name, { namespace: secret.namespace });
      if (!existing) throw new ConflictError(`Secret ${secret.namespace}/${secret.name} came and went`);
      if (existing.type !== "kubernetes.io/dockerconfigjson") {
        throw new TerminalError(
          `Secret ${secret.namespace}/${secret.name} exists with type ${
            String(existing.type)
          }; delete it so ` +
            `quay-bridge can create the robot's dockerconfigjson Secret`,
          { reason: "SecretConflict" },
        );
      }
      await kube.update(SECRETS, secretObject(secret, existing.metadata.resourceVersion));
      return "adopted";
    },

    async updateSecret(secret, resourceVersion) {
      await kube.update(SECRETS, secretObject(secret, resourceVersion));
    },

    async recordSynced(ns, annotation, digest) {
      // One annotation, merged: nothing else on the namespace is touched, so no precondition is needed.
      await kube.patch(NAMESPACES, ns.name, { metadata: { annotations: { [annotation]: digest } } }, {
        patchType: "merge",
      });
    },

    async linkSecret(account, secret) {
      const ops: unknown[] = [];
      // A test of each list: a concurrent change by OpenShift's own controllers fails the patch (a
      // conflict) instead of being overwritten. imagePullSecrets has no strategic-merge key.
      for (
        const [field, list] of [["secrets", account.secrets], [
          "imagePullSecrets",
          account.imagePullSecrets,
        ]] as const
      ) {
        if (list.includes(secret)) continue;
        if (list.length === 0) {
          ops.push({ op: "add", path: `/${field}`, value: [{ name: secret }] });
        } else {
          ops.push({ op: "test", path: `/${field}`, value: list.map((name) => ({ name })) });
          ops.push({ op: "add", path: `/${field}/-`, value: { name: secret } });
        }
      }
      if (ops.length === 0) return;
      await patchTested(
        `ServiceAccount ${account.namespace}/${account.name}`,
        () =>
          kube.patch(SERVICE_ACCOUNTS, account.name, ops, {
            patchType: "json",
            namespace: account.namespace,
          }),
      );
    },
  };
}
