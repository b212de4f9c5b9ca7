/**
 * @module
 * What the cluster shows about a namespace's last sync, so a restarted operator need not re-read
 * every organization from Quay. Once a pass has brought Quay to what was wanted, the namespace's
 * annotation {@linkcode SYNCED_ANNOTATION} records a digest of it (organization, robots and roles,
 * repositories), written beside the pass's Secrets and links; the robot Secrets hold the robots'
 * tokens. When the digest still matches what is wanted now and every robot Secret is there, the
 * Quay mirror can be inferred from the cluster — provided the audit log since the last known sync names nothing of the organization
 * (the caller's part, `quay_audit.ts`). An inferred mirror knows no prototype ids and not who
 * created a repository: a plan that would change a prototype or delete a repository re-reads the
 * organization first; creations need no read (Quay answers "exists").
 */
import { robotFullName, robotSecretName } from "../names.ts";
import { sha256, toBase64Url } from "../sha256.ts";
import type { DesiredOrganization, KnownOrganization } from "./quay_plan.ts";
import { repositoryDescription } from "./quay_plan.ts";
import type { SecretView } from "./views.ts";

/** Namespace annotation: the digest of what was last synced to Quay for it. */
export const SYNCED_ANNOTATION = "quay.redhat.com/quay-bridge-synced";

/** The digest of what a namespace wants in Quay, as recorded in {@linkcode SYNCED_ANNOTATION}. */
export function syncDigest(
  integrationKey: string,
  registryHost: string,
  desired: DesiredOrganization,
): string {
  const text = JSON.stringify([
    integrationKey,
    registryHost,
    desired.organization,
    desired.robots.map((r) => [r.shortName, r.role]),
    [...desired.repositories].sort(),
  ]);
  return toBase64Url(sha256(text)).slice(0, 22);
}

/** The robot's token in a dockerconfigjson Secret for `registryHost`, if it is there. */
export function tokenFromSecret(secret: SecretView, registryHost: string, robot: string): string | undefined {
  if (secret.type !== "kubernetes.io/dockerconfigjson" || !secret.dockerConfig) return undefined;
  try {
    const json = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(secret.dockerConfig))) as {
      auths?: Record<string, { auth?: string }>;
    };
    const auth = json.auths?.[registryHost]?.auth;
    if (!auth) return undefined;
    const [user, ...rest] = atob(auth).split(":");
    return user === robot && rest.length > 0 ? rest.join(":") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The mirror the cluster vouches for, or undefined when the evidence is incomplete (no or another
 * digest, a robot Secret missing or not holding that robot's token).
 */
export function inferOrganization(evidence: {
  readonly namespace: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly digest: string;
  readonly desired: DesiredOrganization;
  readonly clusterId: string;
  readonly registryHost: string;
  readonly secrets: ReadonlyMap<string, SecretView>;
  readonly observedAt: number;
}): KnownOrganization | undefined {
  if (evidence.annotations[SYNCED_ANNOTATION] !== evidence.digest) return undefined;
  const known: KnownOrganization = {
    exists: true,
    robots: new Map(),
    prototypes: new Map(),
    repositories: new Map(),
    observedAt: evidence.observedAt,
  };
  const organization = evidence.desired.organization;
  for (const robot of evidence.desired.robots) {
    const secret = evidence.secrets.get(robotSecretName(robot.shortName, evidence.clusterId));
    const full = robotFullName(organization, robot.shortName);
    const token = secret ? tokenFromSecret(secret, evidence.registryHost, full) : undefined;
    if (token === undefined) return undefined;
    known.robots.set(robot.shortName, token);
    known.prototypes.set(robot.fullName, { id: "", role: robot.role });
  }
  for (const repository of evidence.desired.repositories) {
    known.repositories.set(repository, repositoryDescription(evidence.namespace, repository));
  }
  return known;
}
