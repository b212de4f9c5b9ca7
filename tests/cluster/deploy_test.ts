/**
 * @module
 * `deploy/` installs on a real apiserver (its CRDs pass the real structural-schema checks) and
 * grants the operator's service account what `src/permissions.ts` says it uses, and no more.
 */
import assert from "node:assert/strict";
import { NAMESPACED_PERMISSIONS, type Permission, REQUIRED_PERMISSIONS } from "../../src/permissions.ts";
import { applyDeploy } from "./deploy.ts";
import { startRealCluster } from "./mod.ts";

const OPERATOR_NAMESPACE = "quay-bridge";

Deno.test("deploy/ installs on a real apiserver and grants the operator exactly its permissions", async () => {
  await using cluster = await startRealCluster({ controllers: false });
  await applyDeploy(cluster);

  const allowed = async (permission: Permission, namespace?: string) => {
    const response = await cluster.request("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      method: "POST",
      token: cluster.operatorToken,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { ...permission, namespace } },
      }),
    });
    assert.equal(response.status, 201);
    return (await response.json()).status.allowed === true;
  };
  const describe = (p: Permission) =>
    `${p.verb} ${p.group || "core"}/${p.resource}${p.subresource ? "/" + p.subresource : ""}`;

  const missing: string[] = [];
  for (const permission of REQUIRED_PERMISSIONS) {
    if (!await allowed(permission)) missing.push(`${describe(permission)} (cluster-wide)`);
  }
  for (const permission of NAMESPACED_PERMISSIONS) {
    if (!await allowed(permission, OPERATOR_NAMESPACE)) {
      missing.push(`${describe(permission)} in ${OPERATOR_NAMESPACE}`);
    }
  }
  assert.deepEqual(missing, []);

  const beyond: Permission[] = [
    { group: "", resource: "secrets", verb: "delete" },
    { group: "", resource: "namespaces", verb: "delete" },
    { group: "build.openshift.io", resource: "builds", verb: "create" },
    { group: "rbac.authorization.k8s.io", resource: "clusterroles", verb: "escalate" },
  ];
  for (const permission of beyond) {
    assert.equal(
      await allowed(permission, "some-project"),
      false,
      `${describe(permission)} should be denied`,
    );
  }
});
