/**
 * @module
 * The operator's service-account identity is refused by the real RBAC authorizer until a
 * ClusterRole and a binding to the ServiceAccount subject grant it, the way deploy/ will.
 */
import assert from "node:assert/strict";
import "./quiet_node_deprecations.ts";
import * as k8s from "@kubernetes/client-node";
import { OPERATOR_USER, startRealCluster } from "./mod.ts";

const CLUSTER_ROLE = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: { name: "quay-bridge-e2e-builds" },
  rules: [{ apiGroups: ["build.openshift.io"], resources: ["builds"], verbs: ["get", "list", "watch"] }],
};

const BINDING = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: { name: "quay-bridge-e2e-builds" },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CLUSTER_ROLE.metadata.name },
  // A ServiceAccount subject, not a User: the static token must resolve to the same identity.
  subjects: [{ kind: "ServiceAccount", name: "quay-bridge-operator", namespace: "quay-bridge" }],
};

Deno.test("the operator identity is forbidden until a ClusterRole and binding grant it", async (t) => {
  await using cluster = await startRealCluster({ controllers: false });
  const path = `${cluster.dir}/operator.kubeconfig`;
  await cluster.writeKubeconfig(path, { token: cluster.operatorToken });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const list = () =>
    custom.listClusterCustomObject({ group: "build.openshift.io", version: "v1", plural: "builds" });

  await t.step("the apiserver knows who the token is", async () => {
    const review = await cluster.request("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
      method: "POST",
      token: cluster.operatorToken,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
    });
    const body = await review.json();
    assert.equal(body.status.userInfo.username, OPERATOR_USER);
    assert.deepEqual(body.status.userInfo.groups, [
      "system:serviceaccounts",
      "system:serviceaccounts:quay-bridge",
      "system:authenticated",
    ]);
  });

  await t.step("without RBAC, a list is 403 with the apiserver's Status", async () => {
    const error = await list().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof k8s.ApiException, String(error));
    assert.equal(error.code, 403);
    assert.deepEqual(JSON.parse(error.body as string), {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        `builds.build.openshift.io is forbidden: User "${OPERATOR_USER}" cannot list resource "builds" ` +
        `in API group "build.openshift.io" at the cluster scope`,
      reason: "Forbidden",
      details: { group: "build.openshift.io", kind: "builds" },
      code: 403,
    });
    const canI = await cluster.kubectl(["auth", "can-i", "list", "builds.build.openshift.io"], {
      token: cluster.operatorToken,
    });
    assert.deepEqual([canI.code, canI.stdout.trim()], [1, "no"]);
  });

  await t.step(
    "after the grant, the same client lists and is still refused what was not granted",
    async () => {
      for (const doc of [CLUSTER_ROLE, BINDING]) {
        const result = await cluster.kubectl(["create", "-f", "-"], { stdin: JSON.stringify(doc) });
        assert.equal(result.code, 0, result.stderr);
      }
      // The RBAC authorizer reads bindings from an informer: allow it a moment to see them.
      const deadline = Date.now() + 10_000;
      let items: unknown[] | undefined;
      while (items === undefined && Date.now() < deadline) {
        items = await list().then((r) => (r as { items: unknown[] }).items, () => undefined);
        if (items === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(items, []);
      const create = await cluster.kubectl([
        "auth",
        "can-i",
        "create",
        "builds.build.openshift.io",
        "-n",
        "x",
      ], {
        token: cluster.operatorToken,
      });
      assert.deepEqual([create.code, create.stdout.trim()], [1, "no"]);
    },
  );
});
