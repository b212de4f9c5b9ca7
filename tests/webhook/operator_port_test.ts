/**
 * The admission port over the operator's caches: unmanaged, pending and ready from memory only,
 * `provision` asking the namespace controller for a pass and waiting for the caches, and the rule
 * that only a namespace a valid QuayIntegration selects is ever rewritten or denied.
 */
import assert from "node:assert/strict";
import { FixtureCaches, namespaceView } from "../../src/controller/fixtures.ts";
import { decideAdmission, sharedProvisioner } from "../../src/webhook/admission.ts";
import { operatorAdmissionPort } from "../../src/webhook/operator_port.ts";
import type { AdmissionPort } from "../../src/webhook/port.ts";

const SETTINGS = { resyncMs: 600_000, deletionBudgetMs: 300_000 };

function port(caches: FixtureCaches, requestReconcile: (ns: string) => boolean = () => true, pollMs = 25) {
  return operatorAdmissionPort({ caches, settings: SETTINGS, requestReconcile, pollMs });
}

Deno.test("target answers from the caches", () => {
  const caches = new FixtureCaches().integration("quay", { denylistNamespaces: ["denied"] });
  for (const name of ["team", "denied", "openshift-infra"]) caches.namespace(namespaceView(name));
  caches.namespace(namespaceView("gone", { deleting: true }));
  const p = port(caches);

  assert.equal(p.target("denied").state, "unmanaged");
  assert.equal(p.target("openshift-infra").state, "unmanaged");
  assert.equal(p.target("gone").state, "unmanaged");
  assert.equal(p.target("team").state, "pending");
  assert.equal(p.target("not-yet-seen").state, "pending");

  caches.secret("team", "builder-quay-openshift");
  assert.deepEqual(p.target("team"), {
    state: "ready",
    registryHost: "quay.example.com",
    organization: "openshift_team",
    pushSecretName: "builder-quay-openshift",
    outcome: "ServiceAccountMissing",
  });
  caches.close();
});

Deno.test("an overlap or missing credentials is pending without waiting", async () => {
  const caches = new FixtureCaches().integration("one").integration("two").namespace(namespaceView("team"));
  const p = port(caches);
  const overlap = await p.provision("team", AbortSignal.timeout(5_000));
  assert.equal(overlap.state, "pending");
  assert.match((overlap as { reason: string }).reason, /several QuayIntegrations/);

  caches.registry.set("quay.redhat.com/v1/two", undefined);
  caches.registry.setCredentials("quay.redhat.com/v1/one", {
    state: "missing",
    problem: { reason: "SecretNotFound", message: "Secret quay-bridge/quay-integration was not found" },
  });
  const missing = await p.provision("team", AbortSignal.timeout(5_000));
  assert.deepEqual(missing, {
    state: "pending",
    reason: "Secret quay-bridge/quay-integration was not found",
    outcome: "CredentialsUnavailable",
  });
  caches.close();
});

Deno.test("provision asks for a reconcile until one is taken, and resolves when the push Secret appears", async () => {
  const caches = new FixtureCaches().integration("quay").namespace(namespaceView("team"));
  const asked: string[] = [];
  let leader = false;
  const p = port(caches, (ns) => {
    asked.push(ns);
    return leader;
  }, 5);

  // A follower's request is not taken: it keeps asking while it waits.
  await assert.rejects(p.provision("team", AbortSignal.timeout(50)));
  assert.ok(asked.length > 1);

  leader = true;
  asked.length = 0;
  const pending = p.provision("team", AbortSignal.timeout(5_000));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(asked, ["team"]);
  caches.secret("team", "builder-quay-openshift");
  assert.equal((await pending).state, "ready");
  assert.deepEqual(asked, ["team"], "asked once");
  caches.close();
});

function buildRequest(namespace: string) {
  return {
    uid: `uid-${namespace}`,
    kind: { group: "build.openshift.io", version: "v1", kind: "Build" },
    resource: { group: "build.openshift.io", version: "v1", resource: "builds" },
    namespace,
    operation: "CREATE",
    object: {
      apiVersion: "build.openshift.io/v1",
      kind: "Build",
      metadata: { name: "app-1", namespace },
      spec: {
        strategy: { type: "Docker" },
        output: { to: { kind: "ImageStreamTag", name: "app:latest" } },
      },
    },
  };
}

function admit(p: AdmissionPort, namespace: string) {
  return decideAdmission(buildRequest(namespace), {
    port: p,
    provisioner: sharedProvisioner(p),
    provisionBudgetMs: 200,
  });
}

Deno.test("an invalid QuayIntegration stops no Build: unselected namespaces are admitted unchanged, a valid CR's are rewritten", async () => {
  // "typo" is invalid (its quayHostname has a path) and would select every namespace; "quay" is
  // valid and selects only `team`.
  const caches = new FixtureCaches()
    .integration("typo", { quayHostname: "https://quay.example.com/oops", denylistNamespaces: ["team"] })
    .integration("quay", {
      allowlistNamespaces: ["team"],
      namespaceSelector: { matchLabels: { team: "yes" } },
    })
    .namespace(namespaceView("team", { labels: { team: "yes" } }))
    .namespace(namespaceView("elsewhere"))
    .namespace(namespaceView("nobody", { labels: {} }))
    .secret("team", "builder-quay-openshift");
  const p = port(caches);

  const elsewhere = await admit(p, "elsewhere");
  assert.equal(elsewhere.outcome, "allowed", JSON.stringify(elsewhere));
  assert.equal(elsewhere.answer.patch, undefined, "admitted unchanged");
  assert.match(
    elsewhere.answer.warnings?.[0] ?? "",
    /QuayIntegration typo would select this namespace but is invalid/,
  );

  const team = await admit(p, "team");
  assert.equal(team.outcome, "mutated", JSON.stringify(team));
  assert.ok(team.answer.patch);

  // With the invalid one fixed, it manages `elsewhere` and its Builds wait for provisioning.
  caches.integration("typo", { denylistNamespaces: ["team"] });
  const fixed = await admit(p, "elsewhere");
  assert.equal(fixed.outcome, "denied");
  caches.close();
});

Deno.test("an invalid QuayIntegration whose selector cannot be parsed selects nothing: no warning", async () => {
  const caches = new FixtureCaches()
    .integration("broken", { namespaceSelector: { matchExpressions: [{ key: "a", operator: "Nope" }] } })
    .namespace(namespaceView("elsewhere"));
  const verdict = await admit(port(caches), "elsewhere");
  assert.deepEqual(verdict.answer, { allowed: true });
  assert.equal(verdict.reason, "UnmanagedNamespace");
  caches.close();
});
