/**
 * @module
 * What must change in the cluster for one namespace, computed purely from the integration, the
 * Quay mirror (robot tokens) and the cached Secrets and service accounts: per configured service
 * account, its robot's dockerconfigjson Secret and the Secret's links. The cluster counterpart of
 * `quay_plan.ts`; `namespace_plan.ts` puts the two together.
 */
import type { Integration } from "../integration_spec.ts";
import {
  robotFullName,
  robotSecretName,
  ROTATED_AT_ANNOTATION,
  ROTATION_HANDLED_ANNOTATION,
} from "../names.ts";
import type { NamespaceFacts } from "./namespace_plan.ts";
import type { KnownOrganization } from "./quay_plan.ts";
import { rotationTimestamp } from "./rotation_plan.ts";
import type { SecretView, ServiceAccountView } from "./views.ts";

/** A robot's dockerconfigjson Secret to write. `token` is undefined for a robot this plan creates. */
export interface SecretWrite {
  readonly secret: string;
  readonly serviceAccount: string;
  /** The QuayIntegration's name, recorded on the Secret. */
  readonly integration: string;
  readonly registryHost: string;
  readonly robot: string;
  readonly token: string | undefined;
  /** `credentials-rotated-at` to record: now for a new token, else the Secret's own. */
  readonly rotatedAt: string;
  /** `rotate-credentials-handled` to record: the namespace's request a new token answers. */
  readonly rotationHandled: string | undefined;
}

/** What the rotation decision adds to the cluster plan (see `rotation_plan.ts`). */
export interface ClusterRotation {
  /** Service accounts whose robot's token this plan regenerates. */
  readonly rotating: ReadonlySet<string>;
  /** The namespace's `rotate-credentials` annotation. */
  readonly requested: string | undefined;
  /** Stamp Secrets that lack `credentials-rotated-at` (rotation is configured). */
  readonly stamp: boolean;
  readonly now: number;
}

/** The robot token a dockerconfigjson Secret holds; undefined when it holds none readable. */
export function secretToken(dockerConfigBase64: string | undefined): string | undefined {
  if (!dockerConfigBase64) return undefined;
  try {
    const config = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(dockerConfigBase64)));
    const entry = Object.values((config?.auths ?? {}) as Record<string, { auth?: string }>)[0];
    const pair = atob(entry?.auth ?? "");
    const colon = pair.indexOf(":");
    return colon < 0 ? undefined : pair.slice(colon + 1);
  } catch {
    return undefined;
  }
}

/** True when `current` is the robot's dockerconfigjson Secret for `registryHost` holding `token`. */
export function secretHolds(
  current: SecretView | undefined,
  registryHost: string,
  robot: string,
  token: string | undefined,
): boolean {
  return current !== undefined && token !== undefined && current.type === "kubernetes.io/dockerconfigjson" &&
    current.dockerConfig === dockerConfig(registryHost, robot, token);
}

/** One change in the cluster for a namespace (finalizers apart). */
export type ClusterChange =
  | ({ readonly kind: "createSecret" } & SecretWrite)
  | ({ readonly kind: "updateSecret"; readonly resourceVersion: string } & SecretWrite)
  | { readonly kind: "linkSecret"; readonly secret: string; readonly account: ServiceAccountView };

/** The base64 `.dockerconfigjson` of a robot for `registryHost`, in the upstream operator's shape. */
export function dockerConfig(registryHost: string, username: string, token: string): string {
  const auth = btoa(`${username}:${token}`);
  const json = JSON.stringify({ auths: { [registryHost]: { auth } } });
  return new TextEncoder().encode(json).toBase64();
}

/**
 * The Secrets and links a namespace needs: per configured service account, its robot's
 * dockerconfigjson Secret (written when missing, or when the token or registry changed — always for
 * a robot this plan creates or rotates, whose token is new) and the Secret in the account's `secrets`
 * and `imagePullSecrets`. Accounts that do not exist get their Secret but no link. A Secret written
 * with a new token records when (`credentials-rotated-at`) and which rotation request it answers.
 */
export function planCluster(
  integration: Integration,
  organization: string,
  known: KnownOrganization,
  facts: Pick<NamespaceFacts, "secrets" | "serviceAccounts">,
  rotation: ClusterRotation,
): ClusterChange[] {
  const changes: ClusterChange[] = [];
  for (const sa of integration.serviceAccounts) {
    const secret = robotSecretName(sa.name, integration.clusterId);
    const robot = robotFullName(organization, sa.name);
    const rotating = rotation.rotating.has(sa.name);
    // A rotated robot's new token is in the mirror only once the rotation is applied.
    const token = rotating ? undefined : known.robots.get(sa.name);
    const current = facts.secrets.get(secret);
    const newToken = token === undefined || secretToken(current?.dockerConfig) !== token;
    const write: SecretWrite = {
      secret,
      serviceAccount: sa.name,
      integration: integration.name,
      registryHost: integration.registryHost,
      robot,
      token,
      rotatedAt: newToken
        ? rotationTimestamp(rotation.now)
        : current?.annotations[ROTATED_AT_ANNOTATION] ?? rotationTimestamp(rotation.now),
      rotationHandled: newToken ? rotation.requested : current?.annotations[ROTATION_HANDLED_ANNOTATION],
    };
    if (!current) {
      changes.push({ kind: "createSecret", ...write });
    } else if (
      !secretHolds(current, integration.registryHost, robot, token) ||
      (rotation.stamp && current.annotations[ROTATED_AT_ANNOTATION] === undefined)
    ) {
      changes.push({ kind: "updateSecret", resourceVersion: current.resourceVersion, ...write });
    }
    const account = facts.serviceAccounts.get(sa.name);
    if (account && (!account.secrets.includes(secret) || !account.imagePullSecrets.includes(secret))) {
      changes.push({ kind: "linkSecret", secret, account });
    }
  }
  return changes;
}
