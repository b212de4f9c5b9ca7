/**
 * Rotation through the reconcile, against scripted ports: the token is regenerated in Quay, the
 * mirror learns it, the Secret is rewritten in place with it and its annotations, an Event says so;
 * and when the Secret write fails after Quay regenerated, the next pass writes the new token rather
 * than rotating again (or writing the old one back).
 */
import assert from "node:assert/strict";
import { ConflictError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { ROTATE_ANNOTATION, ROTATED_AT_ANNOTATION, ROTATION_HANDLED_ANNOTATION } from "../names.ts";
import { secretToken } from "./cluster_plan.ts";
import { finalized, FixtureCaches, keyOf, namespaceView, ScriptedKube, ScriptedQuay } from "./fixtures.ts";
import { type NamespaceContext, namespaceMemory, reconcileNamespace } from "./namespace_controller.ts";

const SAS = ["builder", "default", "deployer"];

function setup(spec: Record<string, unknown> = {}) {
  const caches = new FixtureCaches().integration("quay", spec).namespace(namespaceView("team")).accounts(
    "team",
  );
  const kube = new ScriptedKube();
  const quay = new ScriptedQuay();
  const events: { reason: string; message: string }[] = [];
  const clock = { now: Date.parse("2026-03-01T00:00:00Z") };
  const ctx: NamespaceContext = {
    caches,
    kube,
    quay: () => quay,
    tokens: { rejected: () => {}, accepted: () => {} },
    events: { emit: (_target, _type, reason, message) => events.push({ reason, message }) },
    logger: silentLogger,
    settings: { resyncMs: 600_000, deletionBudgetMs: 300_000 },
    memory: namespaceMemory(),
    now: () => clock.now,
    random: () => 0,
  };
  /** The caches catch up with what the scripted cluster holds (as the watches would). */
  const observe = () => {
    const ns = caches.namespaceMap.get("team");
    if (ns && kube.finalizers.get("team")) caches.namespace(finalized(ns));
    for (const s of kube.secrets.values()) {
      const annotations: Record<string, string> = { [ROTATED_AT_ANNOTATION]: s.rotatedAt };
      if (s.rotationHandled !== undefined) annotations[ROTATION_HANDLED_ANNOTATION] = s.rotationHandled;
      caches.secret(s.namespace, s.name, s.dockerConfig, "kubernetes.io/dockerconfigjson", annotations);
    }
    caches.accounts("team", SAS, ["openshift"]);
  };
  const annotate = (value: string) => {
    const ns = caches.namespaceMap.get("team");
    if (ns) caches.namespace({ ...ns, annotations: { ...ns.annotations, [ROTATE_ANNOTATION]: value } });
  };
  const secretTokenOf = (sa: string) =>
    secretToken(kube.secrets.get(`team/${sa}-quay-openshift`)?.dockerConfig);
  return { ctx, caches, kube, quay, events, clock, observe, annotate, secretTokenOf };
}

Deno.test("reconcile: a requested rotation regenerates each token once and rewrites its Secret in place", async () => {
  const h = setup();
  await reconcileNamespace(h.ctx, "team");
  h.observe();
  assert.equal(h.secretTokenOf("builder"), "tok-builder");
  assert.equal(h.kube.secrets.get("team/builder-quay-openshift")?.rotatedAt, "2026-03-01T00:00:00Z");

  h.annotate("now-1");
  h.clock.now += 60_000;
  h.quay.calls.length = 0;
  h.kube.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.quay.methods(), SAS.map(() => "regenerateRobotToken"));
  assert.deepEqual(h.kube.methods(), SAS.map(() => "updateSecret"));
  for (const sa of SAS) {
    assert.equal(h.secretTokenOf(sa), `tok-${sa}-r`);
    const written = h.kube.secrets.get(`team/${sa}-quay-openshift`);
    assert.equal(written?.rotatedAt, "2026-03-01T00:01:00Z");
    assert.equal(written?.rotationHandled, "now-1");
    // The mirror learned the new token: the next pass cannot write the old one back.
    assert.equal(
      h.ctx.memory.organizations.get(`${keyOf("quay")}|openshift_team`)?.robots.get(sa),
      `tok-${sa}-r`,
    );
  }
  // One Event for the pass, naming each robot rotated and each Secret rewritten.
  const rotated = h.events.filter((e) => e.reason === "CredentialsRotated");
  assert.equal(rotated.length, 1);
  const parts = (rotated[0]?.message ?? "").split("; ");
  assert.deepEqual(
    parts.filter((p) => p.startsWith("Rotated")).map((p) => p.split(" (")[0]),
    SAS.map((sa) => `Rotated the token of robot openshift_team+${sa}`),
  );
  assert.deepEqual(
    parts.filter((p) => p.startsWith("Updated Secret")),
    SAS.map((sa) => `Updated Secret ${sa}-quay-openshift`),
  );

  // Answered: the same value rotates nothing, not even after a restart (a fresh memory).
  h.observe();
  h.quay.calls.length = 0;
  h.kube.calls.length = 0;
  await reconcileNamespace({ ...h.ctx, memory: namespaceMemory() }, "team");
  assert.deepEqual(h.quay.methods().filter((m) => m === "regenerateRobotToken"), []);
  assert.deepEqual(h.kube.calls, []);
  h.caches.close();
});

Deno.test("reconcile: a Secret write that fails after Quay regenerated is finished next pass with the new token", async () => {
  const h = setup();
  await reconcileNamespace(h.ctx, "team");
  h.observe();
  h.annotate("again");
  h.kube.failNext("updateSecret", new ConflictError("Secret changed"));
  await assert.rejects(reconcileNamespace(h.ctx, "team"), ConflictError);
  const regenerated = h.quay.methods().filter((m) => m === "regenerateRobotToken").length;
  assert.equal(regenerated, 3);
  h.quay.calls.length = 0;
  h.kube.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  // No second rotation; the failed Secret gets the token Quay now has, never the old one.
  assert.deepEqual(h.quay.methods(), []);
  for (const sa of SAS) assert.equal(h.secretTokenOf(sa), `tok-${sa}-r`);
  assert.equal(h.kube.secrets.get("team/builder-quay-openshift")?.rotationHandled, "again");
  h.caches.close();
});
