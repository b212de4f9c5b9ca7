/**
 * The credentials an integration has: read from its Secret, rejected by Quay until the Secret holds
 * another token or Quay answers again, and an invalid resource's selection telling which namespaces
 * it would have selected.
 */
import assert from "node:assert/strict";
import { credentialsFrom } from "./credentials_controller.ts";
import { FixtureCaches, keyOf, namespaceView } from "./fixtures.ts";

const REF = { namespace: "quay-bridge", name: "quay-integration", key: "token" };

Deno.test("credentials: the token under the configured key, or why there is none", () => {
  const secret = (data: Record<string, string>) => ({ metadata: { name: "quay-integration" }, data });
  assert.deepEqual(credentialsFrom(secret({ token: btoa(" s3cret\n") }), REF), {
    state: "ok",
    token: "s3cret",
  });
  assert.equal(credentialsFrom(undefined, REF).state, "missing");
  const empty = credentialsFrom(secret({ token: btoa("  ") }), REF);
  assert.equal(empty.state === "missing" && empty.problem.reason, "SecretKeyMissing");
  const other = credentialsFrom(secret({ token: btoa("x") }), { ...REF, key: "other" });
  assert.equal(other.state === "missing" && other.problem.reason, "SecretKeyMissing");
});

Deno.test("credentials: a rejected token stays rejected for the same Secret, and recovers on a new one or an answer", () => {
  const caches = new FixtureCaches().integration("quay");
  const key = keyOf("quay");
  const registry = caches.registry;
  assert.equal(registry.rejectToken(key, "Quay answered 401"), true);
  assert.equal(registry.rejectToken(key, "Quay answered 401"), false, "not news twice");
  assert.equal(registry.credentials(key)?.state, "rejected");
  // A resync of the same Secret does not make the token good.
  assert.equal(registry.setCredentials(key, { state: "ok", token: "t0k3n" }), false);
  assert.equal(registry.credentials(key)?.state, "rejected");
  // Quay answering a call made with it does.
  assert.equal(registry.acceptToken(key, 1), true);
  assert.equal(registry.credentials(key)?.state, "ok");
  // So does a new token in the Secret.
  registry.rejectToken(key, "Quay answered 401");
  assert.equal(registry.setCredentials(key, { state: "ok", token: "n3w" }), true);
  assert.deepEqual(registry.credentials(key), { state: "ok", token: "n3w" });
  caches.close();
});

Deno.test("selection: only a valid QuayIntegration manages; an invalid one is named where it would select", () => {
  const caches = new FixtureCaches()
    .integration("typo", { quayHostname: "not a url", allowlistNamespaces: ["team"] })
    .integration("quay", { allowlistNamespaces: ["other"] });
  const team = caches.registry.resolve(namespaceView("team"));
  assert.equal(team.kind, "invalid");
  assert.deepEqual(team.kind === "invalid" && team.integrations.map((i) => [i.name, i.reason]), [[
    "typo",
    "InvalidQuayHostname",
  ]]);
  assert.equal(caches.registry.resolve(namespaceView("other")).kind, "managed");
  assert.equal(caches.registry.resolve(namespaceView("elsewhere")).kind, "unmanaged");
  caches.close();
});
