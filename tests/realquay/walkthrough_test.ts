/**
 * @module
 * The seed walkthrough end to end on a real kube-apiserver AND a real Red Hat Quay: as
 * `tests/cluster/walkthrough_test.ts` (deploy/webhook/self-managed, the operator as a subprocess
 * with its service account's RBAC, leader election), but the QuayIntegration points at the real
 * Quay with its CA in `caBundle` (TLS verified), the build pushes a real image to Quay's `/v2` with
 * the builder robot's dockerconfigjson Secret, the ImageStream imports it from there and the default
 * service account's pull Secret pulls it. The project name is unique: the Quay is shared.
 */
import { applyDeployVariant, startRealCluster } from "../cluster/mod.ts";
import { walkthroughOnRealCluster } from "../cluster/walkthrough_run.ts";
import { deleteOrganization, startRealQuay, uniqueName } from "./mod.ts";

Deno.test("the seed walkthrough passes on a real kube-apiserver and a real Quay", async () => {
  const started = performance.now();
  const quay = await startRealQuay();
  await using cluster = await startRealCluster();
  await applyDeployVariant(cluster, "webhook/self-managed");
  const project = uniqueName("rq-");
  try {
    await walkthroughOnRealCluster(
      cluster,
      { url: quay.url, token: quay.token, caPem: quay.caPem, registryHost: quay.host },
      {
        label: "the real apiserver and the real Quay",
        started,
        project,
        // A real Quay on a shared 2-core machine answers in hundreds of milliseconds.
        stepTimeoutMs: 120_000,
      },
    );
  } finally {
    // The operator deletes the organization with the project; after a failure it may be left.
    await deleteOrganization(quay, `openshift_${project}`);
  }
});
