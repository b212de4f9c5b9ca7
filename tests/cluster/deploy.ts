/**
 * @module
 * Installs the operator's own manifests from `deploy/` into a real cluster the way a user would,
 * with kubectl: the namespace, the QuayIntegration CRDs and the RBAC for the operator's service
 * account. The end-to-end walkthrough starts from here.
 */
import type { RealCluster } from "./cluster.ts";

/** Raised when kubectl refuses a manifest; the message carries kubectl's stderr. */
export class DeployError extends Error {
  override name = "DeployError";
}

const DEPLOY = new URL("../../deploy/", import.meta.url).pathname;

/** The parts of `deploy/` applied, in order (the namespace first: the RBAC lives in it). */
export const DEPLOY_PARTS = ["namespace.yaml", "crds", "rbac"] as const;

/**
 * Applies {@linkcode DEPLOY_PARTS} with `kubectl apply --server-side` (the CRDs are too big for the
 * client-side last-applied annotation) and waits until every CRD in `deploy/crds` is Established.
 */
export async function applyDeploy(cluster: RealCluster): Promise<void> {
  for (const part of DEPLOY_PARTS) {
    const result = await cluster.kubectl([
      "apply",
      "--server-side",
      "--field-manager=e2e",
      "-f",
      DEPLOY + part,
    ]);
    if (result.code !== 0) throw new DeployError(`kubectl apply -f deploy/${part} failed:\n${result.stderr}`);
  }
  await crdsEstablished(cluster);
}

/**
 * Applies a kustomize variant of `deploy/` (`kubectl apply -k deploy/<variant>`, e.g.
 * `webhook/self-managed`) the way the install docs say, and waits until its CRDs are Established.
 * On this cluster no kubelet, scheduler or Deployment controller runs: the Deployment, Services and
 * PodDisruptionBudget are stored but inert; the operator is run beside the cluster instead.
 */
export async function applyDeployVariant(cluster: RealCluster, variant: string): Promise<void> {
  const apply = await cluster.kubectl([
    "apply",
    "--server-side",
    "--field-manager=e2e",
    "-k",
    DEPLOY + variant,
  ]);
  if (apply.code !== 0) throw new DeployError(`kubectl apply -k deploy/${variant} failed:\n${apply.stderr}`);
  await crdsEstablished(cluster);
}

async function crdsEstablished(cluster: RealCluster): Promise<void> {
  const wait = await cluster.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    "-f",
    DEPLOY + "crds",
  ]);
  if (wait.code !== 0) throw new DeployError(`the deploy/ CRDs did not become Established:\n${wait.stderr}`);
}
