/**
 * The admission port over the operator's caches: unmanaged, pending and ready from memory only, and
 * `provision` enqueueing on the leader and waiting for the caches.
 */
import assert from "node:assert/strict";
import { IntegrationRegistry } from "../../src/controller/integration_registry.ts";
import type { NamespaceView, SecretView } from "../../src/controller/views.ts";
import { operatorAdmissionPort, type OperatorCaches } from "../../src/webhook/operator_port.ts";

function namespace(name: string, extra: Partial<NamespaceView> = {}): NamespaceView {
  return {
    name,
    uid: name,
    resourceVersion: "1",
    labels: { "kubernetes.io/metadata.name": name },
    annotations: {},
    finalizers: [],
    deleting: false,
    ...extra,
  };
}

function fakeOperator() {
  const namespaces = new Map<string, NamespaceView>();
  const secrets = new Map<string, SecretView>();
  const queued: string[] = [];
  const registry = new IntegrationRegistry();
  const integration = (name: string, spec: Record<string, unknown>) =>
    registry.set(`quay.redhat.com/v1/${name}`, {
      apiVersion: "quay.redhat.com/v1",
      kind: "QuayIntegration",
      metadata: { name, generation: 1 },
      spec: {
        clusterID: "openshift",
        credentialsSecret: { namespace: "quay-bridge", name: "quay-integration" },
        quayHostname: "https://quay.example.com:8443",
        ...spec,
      },
    });
  const operator = {
    namespaces: { get: (key: string) => namespaces.get(key) },
    secrets: { get: (key: string) => secrets.get(key) },
    registry,
    namespaceQueue: { add: (key: string) => queued.push(key) },
  } as unknown as OperatorCaches;
  const addSecret = (ns: string, name: string) =>
    secrets.set(`${ns}/${name}`, {
      namespace: ns,
      name,
      resourceVersion: "1",
      type: "kubernetes.io/dockerconfigjson",
      dockerConfig: "e30=",
      labels: {},
    });
  return { operator, namespaces, secrets, queued, registry, integration, addSecret };
}

Deno.test("target answers from the caches", () => {
  const f = fakeOperator();
  f.integration("quay", { denylistNamespaces: ["denied"] });
  const port = operatorAdmissionPort({ operator: f.operator, isLeader: () => true });
  for (const name of ["team", "denied", "openshift-infra", "gone"]) f.namespaces.set(name, namespace(name));
  f.namespaces.set("gone", namespace("gone", { deleting: true }));

  assert.deepEqual(port.target("denied"), { state: "unmanaged" });
  assert.deepEqual(port.target("openshift-infra"), { state: "unmanaged" });
  assert.deepEqual(port.target("gone"), { state: "unmanaged" });
  assert.equal(port.target("team").state, "pending");
  assert.equal(port.target("not-yet-seen").state, "pending");

  f.addSecret("team", "builder-quay-openshift");
  assert.deepEqual(port.target("team"), {
    state: "ready",
    registryHost: "quay.example.com:8443",
    organization: "openshift_team",
    pushSecretName: "builder-quay-openshift",
  });
  f.registry.close();
});

Deno.test("an overlap or missing credentials is pending without waiting", async () => {
  const f = fakeOperator();
  f.integration("one", {});
  f.integration("two", {});
  f.namespaces.set("team", namespace("team"));
  const port = operatorAdmissionPort({ operator: f.operator, isLeader: () => true });
  const overlap = await port.provision("team", AbortSignal.timeout(5_000));
  assert.equal(overlap.state, "pending");
  assert.match((overlap as { reason: string }).reason, /several QuayIntegrations/);

  f.registry.set("quay.redhat.com/v1/two", undefined);
  f.registry.setCredentials("quay.redhat.com/v1/one", {
    state: "missing",
    problem: { reason: "SecretNotFound", message: "Secret quay-bridge/quay-integration was not found" },
  });
  const missing = await port.provision("team", AbortSignal.timeout(5_000));
  assert.deepEqual(missing, {
    state: "pending",
    reason: "Secret quay-bridge/quay-integration was not found",
  });
  f.registry.close();
});

Deno.test("provision enqueues on the leader and resolves when the push Secret appears", async () => {
  const f = fakeOperator();
  f.integration("quay", {});
  f.namespaces.set("team", namespace("team"));
  let leader = false;
  const port = operatorAdmissionPort({ operator: f.operator, isLeader: () => leader, pollMs: 5 });

  // A follower only waits.
  await assert.rejects(port.provision("team", AbortSignal.timeout(50)));
  assert.deepEqual(f.queued, []);

  leader = true;
  const pending = port.provision("team", AbortSignal.timeout(5_000));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(f.queued, ["team"]);
  f.addSecret("team", "builder-quay-openshift");
  assert.equal((await pending).state, "ready");
  assert.deepEqual(f.queued, ["team"], "enqueued once");
  f.registry.close();
});
