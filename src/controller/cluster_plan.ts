/**
 * @module
 * What must change in the cluster for one namespace, computed purely from the integration, the
 * Quay mirror (robot tokens) and the cached Secrets and service accounts: per configured service
 * account, its robot's dockerconfigjson Secret and the Secret's links. The cluster counterpart of
 * `quay_plan.ts`; `namespace_plan.ts` puts the two together.
 */
import type { Integration } from "../integration_spec.ts";
import { robotFullName, robotSecretName } from "../names.ts";
import type { NamespaceFacts } from "./namespace_plan.ts";
import type { KnownOrganization } from "./quay_plan.ts";
import type { ServiceAccountView } from "./views.ts";

/** A robot's dockerconfigjson Secret to write. `token` is undefined for a robot this plan creates. */
export interface SecretWrite {
  readonly secret: string;
  readonly serviceAccount: string;
  /** The QuayIntegration's name, recorded on the Secret. */
  readonly integration: string;
  readonly registryHost: string;
  readonly robot: string;
  readonly token: string | undefined;
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
 * a robot this plan creates, whose token is new) and the Secret in the account's `secrets` and
 * `imagePullSecrets`. Accounts that do not exist get their Secret but no link.
 */
export function planCluster(
  integration: Integration,
  organization: string,
  known: KnownOrganization,
  facts: Pick<NamespaceFacts, "secrets" | "serviceAccounts">,
): ClusterChange[] {
  const changes: ClusterChange[] = [];
  for (const sa of integration.serviceAccounts) {
    const secret = robotSecretName(sa.name, integration.clusterId);
    const robot = robotFullName(organization, sa.name);
    const token = known.robots.get(sa.name);
    const write: SecretWrite = {
      secret,
      serviceAccount: sa.name,
      integration: integration.name,
      registryHost: integration.registryHost,
      robot,
      token,
    };
    const current = facts.secrets.get(secret);
    if (!current) {
      changes.push({ kind: "createSecret", ...write });
    } else if (
      token === undefined || current.type !== "kubernetes.io/dockerconfigjson" ||
      current.dockerConfig !== dockerConfig(integration.registryHost, robot, token)
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
