/**
 * @module
 * The seed walkthrough end to end on a real kube-apiserver: `deploy/webhook/self-managed` applied
 * with kubectl, the operator run as a subprocess with its service account's token (so only the
 * deploy/ RBAC applies) and leader election on, Quay from the test world, OpenShift's behaviours
 * against the apiserver. The real apiserver validates our CRDs, enforces our RBAC and calls our
 * webhook over TLS with the caBundle the operator keeps in the MutatingWebhookConfiguration
 * deploy/ installed (outside a cluster the operator points it at `https://127.0.0.1:<port>`).
 */
import { startQuayWorld } from "../world/quay/mod.ts";
import { applyDeployVariant, startRealCluster } from "./mod.ts";
import { walkthroughOnRealCluster } from "./walkthrough_run.ts";

Deno.test("the seed walkthrough passes on a real kube-apiserver with deploy/ and the operator's RBAC", async () => {
  const started = performance.now();
  await using cluster = await startRealCluster();
  await applyDeployVariant(cluster, "webhook/self-managed");
  const quay = await startQuayWorld();
  try {
    await walkthroughOnRealCluster(
      cluster,
      { url: quay.url, token: quay.adminToken, caPem: quay.caPem, registryHost: quay.registryHost },
      { label: "the real apiserver", started },
    );
  } finally {
    await quay.close();
  }
});
