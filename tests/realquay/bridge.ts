/**
 * @module
 * The in-process operator of `tests/integration/harness.ts` (test-world Kubernetes API) pointed at the
 * real Quay: OpenShift's behaviours importing from the real registry, and a QuayIntegration whose
 * token is the real Quay's. Shared by the push tests of this folder (audit log, notifications over
 * HTTP and HTTPS).
 */
import type { Bridge } from "../integration/harness.ts";
import { startOpenShiftBehaviours } from "../world/openshift/mod.ts";
import type { RealQuay } from "./mod.ts";

/** OpenShift's behaviours (ImageStream imports from the real registry among them) on the bridge's API. */
export function openShiftForRealQuay(b: Bridge, real: RealQuay): ReturnType<typeof startOpenShiftBehaviours> {
  return startOpenShiftBehaviours({
    url: b.kubeWorld.url,
    token: b.kubeWorld.adminToken,
    caPem: b.kubeWorld.caPem,
    registryCaPem: real.caPem,
    mode: "world",
    hooks: b.kubeWorld.hooks,
  });
}

/**
 * Applies the QuayIntegration `quay` for the real Quay (its token in Secret `quay-bridge/real-quay`)
 * with `spec` on top, selecting only `namespaces` (the operator's own namespace must not become an
 * organization in the shared Quay), then starts the operator.
 */
export async function integrateRealQuay(
  b: Bridge,
  real: RealQuay,
  options: { clusterId: string; namespaces: string[]; spec?: Record<string, unknown> },
): Promise<void> {
  await b.kube.ok("POST", "/api/v1/namespaces/quay-bridge/secrets", {
    metadata: { name: "real-quay" },
    stringData: { token: real.token },
  });
  await b.applyIntegration("quay", {
    clusterID: options.clusterId,
    credentialsSecret: { namespace: "quay-bridge", name: "real-quay", key: "token" },
    quayHostname: real.url,
    caBundle: real.caPem,
    allowlistNamespaces: options.namespaces,
    ...options.spec,
  });
  await b.startOperator();
}
