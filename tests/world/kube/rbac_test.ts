/**
 * RBAC: identities by bearer token, authorised only by the Roles, ClusterRoles and bindings stored
 * in the world (here the operator's from `deploy/rbac/`), with kube-apiserver's denial messages.
 */
import assert from "node:assert/strict";
import { Kubectl, withWorld } from "./test_helpers.ts";

const DEPLOY = new URL("../../../deploy/", import.meta.url).pathname;
const OPERATOR = "system:serviceaccount:quay-bridge:quay-bridge-operator";
const TOKEN = "operator-token-abcdef0123456789";

Deno.test("the operator's service account can do exactly what deploy/rbac grants", async () => {
  await withWorld({ tokens: { [TOKEN]: { user: OPERATOR } } }, async ({ world, request }) => {
    const kubectl = await Kubectl.create(world);
    try {
      const applied = await kubectl.run([
        "apply",
        "-f",
        `${DEPLOY}namespace.yaml`,
        "-f",
        `${DEPLOY}crds/`,
        "-f",
        `${DEPLOY}rbac/`,
      ]);
      assert.equal(applied.code, 0, applied.stderr);
    } finally {
      await kubectl.cleanup();
    }
    const as = (method: string, path: string, body?: unknown, contentType?: string) =>
      request(method, path, { token: TOKEN, body, contentType });

    assert.equal((await as("GET", "/api/v1/namespaces")).status, 200);
    assert.equal((await as("GET", "/api/v1/secrets")).status, 200, "secrets are listed cluster-wide");
    assert.equal(
      (await as(
        "PATCH",
        "/api/v1/namespaces/default",
        { metadata: { labels: { a: "b" } } },
        "application/merge-patch+json",
      )).status,
      200,
    );
    assert.equal(
      (await as("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "robot" } })).status,
      201,
    );
    assert.equal((await as("GET", "/apis/quay.redhat.com/v1/quayintegrations")).status, 200);

    const deleteNs = await as("DELETE", "/api/v1/namespaces/default");
    assert.equal(deleteNs.status, 403);
    assert.deepEqual(deleteNs.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        `namespaces "default" is forbidden: User "${OPERATOR}" cannot delete resource "namespaces" in API group "" in the namespace "default"`,
      reason: "Forbidden",
      details: { name: "default", kind: "namespaces" },
      code: 403,
    });
    const deleteSecret = await as("DELETE", "/api/v1/namespaces/default/secrets/robot");
    assert.equal(
      deleteSecret.body.message,
      `secrets "robot" is forbidden: User "${OPERATOR}" cannot delete resource "secrets" in API group "" in the namespace "default"`,
    );
    const crdWrite = await as("PUT", "/apis/quay.redhat.com/v1/quayintegrations/x", {
      apiVersion: "quay.redhat.com/v1",
      kind: "QuayIntegration",
      metadata: { name: "x" },
    });
    assert.equal(
      crdWrite.body.message,
      `quayintegrations.quay.redhat.com "x" is forbidden: User "${OPERATOR}" cannot update resource "quayintegrations" in API group "quay.redhat.com" at the cluster scope`,
    );
    assert.deepEqual(crdWrite.body.details, {
      name: "x",
      group: "quay.redhat.com",
      kind: "quayintegrations",
    });
    const status = await as("PUT", "/apis/quay.redhat.com/v1/quayintegrations/x/status", {});
    assert.equal(status.status, 404, "status updates are allowed (the object is just missing)");

    const leaseHere = await as("POST", "/apis/coordination.k8s.io/v1/namespaces/quay-bridge/leases", {
      metadata: { name: "quay-bridge-leader" },
    });
    assert.equal(leaseHere.status, 201, "the Role grants leases in the operator's namespace");
    const leaseThere = await as("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {
      metadata: { name: "x" },
    });
    assert.equal(
      leaseThere.body.message,
      `leases.coordination.k8s.io is forbidden: User "${OPERATOR}" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "default"`,
    );
    const watchRoles = await as("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles?watch=1");
    assert.equal(
      watchRoles.body.message,
      `clusterroles.rbac.authorization.k8s.io is forbidden: User "${OPERATOR}" cannot watch resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`,
    );

    const review = await as("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      kind: "SelfSubjectAccessReview",
      apiVersion: "authorization.k8s.io/v1",
      spec: {
        resourceAttributes: {
          group: "image.openshift.io",
          resource: "imagestreamimports",
          verb: "create",
          namespace: "team",
        },
      },
    });
    assert.equal(review.status, 201);
    assert.equal(review.body.status.allowed, true);
    assert.equal(
      review.body.status.reason,
      `RBAC: allowed by ClusterRoleBinding "quay-bridge" of ClusterRole "quay-bridge" to ServiceAccount "quay-bridge-operator/quay-bridge"`,
    );
    const no = await as("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      spec: { resourceAttributes: { resource: "pods", verb: "delete", namespace: "team" } },
    });
    assert.equal(no.body.status.allowed, false);
  });
});

Deno.test("authentication and the default discovery grant", async () => {
  await withWorld({ tokens: { "plain-user-token": { user: "alice" } } }, async ({ world, http }) => {
    const get = async (path: string, token?: string) => {
      const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
      const response = await fetch(world.url + path, { headers, client: http });
      return { status: response.status, body: await response.json().catch(() => undefined) };
    };
    const anonymous = await get("/api/v1/namespaces");
    assert.equal(anonymous.status, 401);
    assert.deepEqual(anonymous.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "Unauthorized",
      reason: "Unauthorized",
      code: 401,
    });
    assert.equal((await get("/version", "wrong")).status, 401);
    for (const path of ["/version", "/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v3"]) {
      assert.equal((await get(path, "plain-user-token")).status, 200, path);
    }
    const nonResource = await get("/metrics", "plain-user-token");
    assert.equal(nonResource.status, 403);
    assert.equal(nonResource.body.message, 'forbidden: User "alice" cannot get path "/metrics"');
    const list = await get("/api/v1/namespaces", "plain-user-token");
    assert.equal(
      list.body.message,
      'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope',
    );
  });
});

Deno.test("bindings, resourceNames, missing roles and impersonation follow RBAC rules", async () => {
  await withWorld({ tokens: { "bob-token": { user: "bob", groups: ["devs"] } } }, async ({ request }) => {
    const rbac = "/apis/rbac.authorization.k8s.io/v1";
    await request("POST", "/api/v1/namespaces", { body: { metadata: { name: "team" } } });
    await request("POST", `${rbac}/namespaces/team/roles`, {
      body: {
        metadata: { name: "one-cm" },
        rules: [{
          apiGroups: [""],
          resources: ["configmaps"],
          resourceNames: ["allowed"],
          verbs: ["get", "update"],
        }],
      },
    });
    await request("POST", `${rbac}/namespaces/team/rolebindings`, {
      body: {
        metadata: { name: "devs-one-cm" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "one-cm" },
        subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "devs" }],
      },
    });
    await request("POST", "/api/v1/namespaces/team/configmaps", { body: { metadata: { name: "allowed" } } });
    await request("POST", "/api/v1/namespaces/team/configmaps", { body: { metadata: { name: "other" } } });
    assert.equal(
      (await request("GET", "/api/v1/namespaces/team/configmaps/allowed", { token: "bob-token" })).status,
      200,
    );
    assert.equal(
      (await request("GET", "/api/v1/namespaces/team/configmaps/other", { token: "bob-token" })).status,
      403,
    );
    assert.equal(
      (await request("GET", "/api/v1/namespaces/team/configmaps", { token: "bob-token" })).status,
      403,
      "resourceNames never allow lists",
    );

    await request("POST", `${rbac}/clusterrolebindings`, {
      body: {
        metadata: { name: "dangling" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "gone" },
        subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "bob" }],
      },
    });
    const dangling = await request("GET", "/api/v1/namespaces/team/secrets", { token: "bob-token" });
    assert.equal(
      dangling.body.message,
      'secrets is forbidden: User "bob" cannot list resource "secrets" in API group "" in the namespace "team": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    );

    const impersonated = await request("GET", "/api/v1/namespaces/team/configmaps/allowed", {
      headers: { "impersonate-user": "carol", "impersonate-group": "devs" },
    });
    assert.equal(impersonated.status, 200, "the admin may impersonate; carol gets the devs' rights");
    const notAllowed = await request("GET", "/api/v1/namespaces", {
      token: "bob-token",
      headers: { "impersonate-user": "admin" },
    });
    assert.equal(notAllowed.status, 403);
    assert.equal(
      notAllowed.body.message,
      'users "admin" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    );
  });
});

Deno.test("SubjectAccessReview and SelfSubjectRulesReview answer for the stored rules", async () => {
  await withWorld({ tokens: { "bob-token": { user: "bob" } } }, async ({ request }) => {
    const rbac = "/apis/rbac.authorization.k8s.io/v1";
    await request("POST", `${rbac}/clusterrolebindings`, {
      body: {
        metadata: { name: "bob-view" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
        subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "bob" }],
      },
    });
    const sar = (verb: string) =>
      request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        body: {
          spec: {
            user: "bob",
            groups: ["system:authenticated"],
            resourceAttributes: { namespace: "default", verb, resource: "configmaps" },
          },
        },
      });
    assert.equal((await sar("list")).body.status.allowed, true);
    assert.equal((await sar("delete")).body.status.allowed, false);
    const rules = await request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {
      token: "bob-token",
      body: { spec: { namespace: "default" } },
    });
    assert.equal(rules.status, 201);
    assert.ok(
      rules.body.status.resourceRules.some((r: { resources?: string[] }) =>
        r.resources?.includes("configmaps")
      ),
    );
    assert.ok(
      rules.body.status.nonResourceRules.some((r: { nonResourceURLs?: string[] }) =>
        r.nonResourceURLs?.includes("/api")
      ),
    );
    const forbidden = await request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
      token: "bob-token",
      body: { spec: { user: "x" } },
    });
    assert.equal(forbidden.status, 403, "only selfsubject reviews are open to everyone");
  });
});
