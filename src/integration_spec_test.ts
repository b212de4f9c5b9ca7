import assert from "node:assert/strict";
import {
  API_LEGACY,
  API_V1,
  type Integration,
  parseIntegration,
  parseQuayHostname,
  selectsNamespace,
} from "./integration_spec.ts";

function v1(spec: Record<string, unknown>, name = "example") {
  return { apiVersion: API_V1, kind: "QuayIntegration", metadata: { name, generation: 1 }, spec };
}

const base = {
  credentialsSecret: { namespace: "quay-bridge", name: "quay-integration" },
  quayHostname: "https://quay.example.com",
};

function parsed(spec: Record<string, unknown>): Integration {
  const r = parseIntegration(v1(spec));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.integration;
}

Deno.test("parseIntegration applies the documented defaults", () => {
  const i = parsed(base);
  assert.equal(i.clusterId, "openshift");
  assert.equal(i.organizationPrefix, "openshift");
  assert.deepEqual(i.credentialsSecret, { namespace: "quay-bridge", name: "quay-integration", key: "token" });
  assert.equal(i.quayUrl, "https://quay.example.com");
  assert.equal(i.registryHost, "quay.example.com");
  assert.equal(i.insecureRegistry, false);
  assert.deepEqual(i.serviceAccounts, [
    { name: "builder", role: "write" },
    { name: "default", role: "read" },
    { name: "deployer", role: "read" },
  ]);
  assert.equal(i.organizationDeletionPolicy, "Delete");
  assert.equal(i.repositoryDeletionPolicy, "Retain");
});

Deno.test("parseIntegration lower-cases clusterID and honours organizationPrefix and key", () => {
  const i = parsed({
    ...base,
    clusterID: "Prod-East",
    credentialsSecret: { ...base.credentialsSecret, key: "oauth" },
  });
  assert.equal(i.clusterId, "prod-east");
  assert.equal(i.organizationPrefix, "prod-east");
  assert.equal(i.credentialsSecret.key, "oauth");
  assert.equal(parsed({ ...base, organizationPrefix: "team.a" }).organizationPrefix, "team.a");
});

Deno.test("parseIntegration maps the legacy v1alpha1 fields", () => {
  const r = parseIntegration({
    apiVersion: API_LEGACY,
    metadata: { name: "old" },
    spec: {
      clusterID: "openshift",
      credentialsSecretName: "ops/quay-token",
      quayHostname: "https://quay.example.com:8443",
      whitelistNamespaces: ["a"],
      blacklistNamespaces: ["b"],
    },
  }, { operatorNamespace: "ops" });
  assert.ok(r.ok);
  assert.deepEqual(r.integration.credentialsSecret, { namespace: "ops", name: "quay-token", key: "token" });
  assert.deepEqual(r.integration.allowlistNamespaces, ["a"]);
  assert.deepEqual(r.integration.denylistNamespaces, ["b"]);
  assert.equal(r.integration.registryHost, "quay.example.com:8443");
  assert.equal(r.integration.apiVersion, API_LEGACY);
});

Deno.test("parseIntegration reports every problem with a reason", () => {
  const r = parseIntegration(v1({
    quayHostname: "https://quay.example.com/some/path",
    clusterID: "bad_id!",
    serviceAccounts: { builder: "owner" },
    organizationDeletionPolicy: "Sometimes",
    namespaceSelector: { matchExpressions: [{ key: "x", operator: "In" }] },
  }));
  assert.equal(r.ok, false);
  const reasons = new Set(!r.ok ? r.problems.map((p) => p.reason) : []);
  for (const reason of ["InvalidQuayHostname", "InvalidClusterID", "InvalidServiceAccounts", "InvalidSpec"]) {
    assert.ok(reasons.has(reason), `missing ${reason} in ${[...reasons]}`);
  }
  assert.ok(reasons.has("InvalidCredentialsSecret"));
  assert.ok(reasons.has("InvalidNamespaceSelector"));
});

Deno.test("parseQuayHostname accepts a bare host and rejects paths and other schemes", () => {
  assert.deepEqual(parseQuayHostname("quay.example.com"), {
    ok: true,
    url: "https://quay.example.com",
    host: "quay.example.com",
  });
  assert.equal(parseQuayHostname("ftp://quay").ok, false);
  assert.equal(parseQuayHostname("https://").ok, false);
  assert.equal(parseQuayHostname("").ok, false);
  assert.equal(parseQuayHostname("https://q/x").ok, false);
});

Deno.test("selectsNamespace follows the upstream allow/deny rule", () => {
  const all = parsed(base);
  assert.equal(selectsNamespace(all, { name: "team-a" }), true);
  for (const denied of ["default", "openshift", "management-infra", "openshift-monitoring", "kube-system"]) {
    assert.equal(selectsNamespace(all, { name: denied }), false, denied);
  }
  const allow = parsed({ ...base, allowlistNamespaces: ["team-a", "openshift-builds"] });
  assert.equal(selectsNamespace(allow, { name: "team-a" }), true);
  assert.equal(
    selectsNamespace(allow, { name: "openshift-builds" }),
    true,
    "allow list overrides default denials",
  );
  assert.equal(
    selectsNamespace(allow, { name: "team-b" }),
    false,
    "a non-empty allow list excludes the rest",
  );
  const deny = parsed({ ...base, allowlistNamespaces: ["x"], denylistNamespaces: ["x"] });
  assert.equal(selectsNamespace(deny, { name: "x" }), false, "deny wins over allow");
});

Deno.test("selectsNamespace ANDs the namespaceSelector with the lists", () => {
  const i = parsed({ ...base, namespaceSelector: { matchLabels: { quay: "yes" } } });
  assert.equal(selectsNamespace(i, { name: "a", labels: { quay: "yes" } }), true);
  assert.equal(selectsNamespace(i, { name: "a", labels: {} }), false);
  assert.equal(selectsNamespace(i, { name: "kube-x", labels: { quay: "yes" } }), false);
  const expr = parsed({
    ...base,
    namespaceSelector: { matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] },
  });
  assert.equal(selectsNamespace(expr, { name: "a", labels: { env: "dev" } }), true);
  assert.equal(selectsNamespace(expr, { name: "a", labels: { env: "prod" } }), false);
});

Deno.test("parseIntegration refuses a credentials Secret outside the allowed namespaces", () => {
  const outside = { ...base, credentialsSecret: { namespace: "victim", name: "db-creds", key: "password" } };
  const r = parseIntegration(v1(outside));
  assert.equal(r.ok, false);
  assert.deepEqual(!r.ok && r.problems.map((p) => p.reason), ["CredentialsNamespaceNotAllowed"]);
  const legacy = parseIntegration({
    apiVersion: API_LEGACY,
    metadata: { name: "old" },
    spec: { credentialsSecretName: "victim/db-creds", quayHostname: "quay.example.com" },
  });
  assert.deepEqual(!legacy.ok && legacy.problems.map((p) => p.reason), ["CredentialsNamespaceNotAllowed"]);
  // The operator's namespace, wherever it is, and the admin's list.
  assert.equal(parseIntegration(v1(outside), { operatorNamespace: "victim" }).ok, true);
  assert.equal(parseIntegration(v1(base), { operatorNamespace: "elsewhere" }).ok, false);
  const listed = { operatorNamespace: "quay-bridge", credentialsNamespaces: ["quay-bridge", "victim"] };
  assert.equal(parseIntegration(v1(outside), listed).ok, true);
});

Deno.test("selectsNamespace leaves the operator's own namespace alone unless allow-listed", () => {
  assert.equal(selectsNamespace(parsed(base), { name: "quay-bridge" }), false);
  const elsewhere = parseIntegration(v1(base), {
    operatorNamespace: "ops",
    credentialsNamespaces: ["quay-bridge"],
  });
  assert.ok(elsewhere.ok);
  assert.equal(selectsNamespace(elsewhere.integration, { name: "ops" }), false);
  assert.equal(selectsNamespace(elsewhere.integration, { name: "quay-bridge" }), true);
  assert.equal(
    selectsNamespace(parsed({ ...base, allowlistNamespaces: ["quay-bridge"] }), { name: "quay-bridge" }),
    true,
  );
});
