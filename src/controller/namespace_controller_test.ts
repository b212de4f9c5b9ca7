/**
 * Reconcile tests against scripted ports: the order the plan is applied in, what one pass costs,
 * and how each kind of failure ends a pass — a conflict before any second decision, a rejected
 * token reported at once, a name Quay has not freed retried no sooner than it said, a deletion
 * retried within its budget and released after it.
 */
import assert from "node:assert/strict";
import { ConflictError, QuayApiError, TerminalError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { DELETION_FAILING_SINCE_ANNOTATION, REPOSITORY_MARKER } from "../names.ts";
import type { EventTarget, EventType } from "./events.ts";
import { finalized, FixtureCaches, keyOf, namespaceView, ScriptedKube, ScriptedQuay } from "./fixtures.ts";
import { type NamespaceContext, namespaceMemory, reconcileNamespace } from "./namespace_controller.ts";
import type { NamespaceKubePort } from "./namespace_ports.ts";
import type { AuditState } from "./quay_audit.ts";
import { WorkQueue } from "./queue.ts";
import { SYNCED_ANNOTATION } from "./sync_evidence.ts";

interface Harness {
  readonly ctx: NamespaceContext;
  readonly caches: FixtureCaches;
  readonly kube: ScriptedKube;
  readonly quay: ScriptedQuay;
  readonly events: { type: EventType; reason: string; message: string; target: EventTarget }[];
  readonly rejected: string[];
  readonly clock: { now: number };
}

function harness(caches: FixtureCaches, quay = new ScriptedQuay()): Harness {
  const kube = new ScriptedKube();
  const events: Harness["events"] = [];
  const rejected: string[] = [];
  const clock = { now: 1_000_000 };
  const ctx: NamespaceContext = {
    caches,
    kube,
    quay: () => quay,
    tokens: { rejected: (key) => rejected.push(key), accepted: () => {} },
    events: { emit: (target, type, reason, message) => events.push({ target, type, reason, message }) },
    logger: silentLogger,
    settings: { resyncMs: 600_000, deletionBudgetMs: 300_000 },
    memory: namespaceMemory(),
    now: () => clock.now,
    random: () => 0,
  };
  return { ctx, caches, kube, quay, events, rejected, clock };
}

/** A selected project with its service accounts and one ImageStream. */
function newProject(): FixtureCaches {
  return new FixtureCaches().integration("quay").namespace(namespaceView("team")).accounts("team")
    .imageStream("team", "app");
}

/** Makes the caches show what the scripted cluster now holds (what the watches would deliver). */
function observeWrites(h: Harness): void {
  const ns = h.caches.namespaceMap.get("team");
  if (ns && h.kube.finalizers.get("team")) h.caches.namespace(finalized(ns));
  for (const secret of h.kube.secrets.values()) {
    h.caches.secret(secret.namespace, secret.name, secret.dockerConfig);
  }
  h.caches.accounts("team", ["builder", "default", "deployer"], ["openshift"]);
}

Deno.test("reconcile: a new namespace gets its finalizer first, then Quay in order, then Secrets and links", async () => {
  const h = harness(newProject());
  const action = await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.kube.methods(), [
    "addFinalizer",
    "createSecret",
    "createSecret",
    "createSecret",
    "linkSecret",
    "linkSecret",
    "linkSecret",
  ]);
  assert.deepEqual(h.quay.methods(), [
    "getOrganization",
    "createOrganization",
    "createRobot",
    "createRobot",
    "createRobot",
    "createPrototype",
    "createPrototype",
    "createPrototype",
    "createRepository",
  ]);
  assert.equal(h.ctx.memory.outcomes.get("team")?.state, "Ready");
  assert.equal(h.ctx.memory.outcomes.get("team")?.repositories, 1);
  assert.deepEqual(action, { requeueAfterMs: 600_000 });
  const secret = h.kube.secrets.get("team/builder-quay-openshift");
  const auth = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(secret?.dockerConfig ?? "")));
  assert.equal(atob(auth.auths["quay.example.com"].auth), "openshift_team+builder:tok-builder");
  assert.ok(h.events.some((e) => e.reason === "OrganizationCreated"));

  // The next pass, with the caches caught up and the mirror fresh, costs no call at all.
  observeWrites(h);
  h.quay.calls.length = 0;
  h.kube.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.quay.calls, []);
  assert.deepEqual(h.kube.calls, []);
  h.caches.close();
});

Deno.test("reconcile: a conflict on the finalizer ends the pass before Quay is touched", async () => {
  const h = harness(newProject());
  h.kube.failNext("addFinalizer", new ConflictError("Namespace team changed while it was patched"));
  await assert.rejects(reconcileNamespace(h.ctx, "team"), ConflictError);
  assert.deepEqual(h.quay.methods(), ["getOrganization"], "only the facts were read");
  assert.equal(h.ctx.memory.outcomes.get("team"), undefined, "a conflict is not a failure to report");
  assert.deepEqual(h.events.filter((e) => e.type === "Warning"), []);
  h.caches.close();
});

Deno.test("reconcile: an organization created meanwhile ends the pass; the next one plans from a fresh read", async () => {
  class Racing extends ScriptedQuay {
    override getOrganization(org: string) {
      const answer = super.getOrganization(org);
      // Another replica creates it between our read and our create.
      if (!this.organizations.has(org)) this.seed(org, ["builder"]);
      return answer;
    }
  }
  const h = harness(newProject(), new Racing());
  await assert.rejects(reconcileNamespace(h.ctx, "team"), ConflictError);
  assert.deepEqual(
    h.quay.methods(),
    ["getOrganization", "createOrganization"],
    "no step of the stale plan ran",
  );

  h.quay.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  const robots = h.quay.calls.filter((c) => c[0] === "createRobot").map((c) => c[2]);
  assert.deepEqual(robots, ["default", "deployer"], "the robot that exists is not created again");
  assert.equal(h.quay.methods()[0], "listRobots", "the mirror was read again");
  h.caches.close();
});

Deno.test("reconcile: Quay rejecting the token is reported to the integration at once", async () => {
  const h = harness(newProject());
  h.quay.failNext(
    "getOrganization",
    new QuayApiError("Quay answered 401 for GET /api/v1/organization/{org}", {
      status: 401,
      route: "GET /api/v1/organization/{org}",
    }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.deepEqual(h.rejected, [keyOf("quay")]);
  assert.equal(h.ctx.memory.outcomes.get("team")?.reason, "TokenInvalid");
  h.caches.close();
});

Deno.test("reconcile: an organization name Quay has not freed yet is retried no sooner than Quay said", async () => {
  const h = harness(newProject());
  h.quay.failNext(
    "createOrganization",
    new QuayApiError("Quay answered 400: the name is not free yet", {
      status: 400,
      route: "POST /api/v1/organization/",
      retry: "transient",
      reason: "OrganizationNameNotFree",
      retryAfterSeconds: 30,
    }),
  );
  const queue = new WorkQueue({
    name: "namespace",
    logger: silentLogger,
    reconcile: (key) => reconcileNamespace(h.ctx, key),
  });
  queue.add("team");
  await queue.idle();
  assert.equal(h.ctx.memory.outcomes.get("team")?.reason, "OrganizationNameNotFree");
  assert.ok(queue.isIdle(29_000), "not retried within the 30 s Quay asked for");
  assert.ok(!queue.isIdle(31_000), "retried then, not after the terminal wait of minutes");
  await queue.shutdown(0);
  h.caches.close();
});

Deno.test("reconcile: a repository already gone is not reported as deleted", async () => {
  const caches = new FixtureCaches().integration("quay", { repositoryDeletionPolicy: "Delete" })
    .namespace(finalized(namespaceView("team"))).accounts("team");
  const quay = new ScriptedQuay().seed("openshift_team", ["builder", "default", "deployer"])
    .seedPrototypes("openshift_team", [["builder", "write"], ["default", "read"], ["deployer", "read"]]);
  const h = harness(caches, quay);
  await reconcileNamespace(h.ctx, "team");
  // Our mirror still lists `old`, which someone deleted in Quay meanwhile.
  h.ctx.memory.organizations.get(`${keyOf("quay")}|openshift_team`)?.repositories
    .set("old", `${REPOSITORY_MARKER} team/old`);
  h.events.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.ok(h.quay.methods().includes("deleteRepository"));
  assert.deepEqual(h.events.filter((e) => e.reason === "RepositoryDeleted"), []);
  h.caches.close();
});

Deno.test("reconcile: a foreign Secret fails only its own account; the others are linked", async () => {
  const h = harness(newProject());
  h.kube.failNext(
    "createSecret",
    new TerminalError("Secret team/builder-quay-openshift exists with type Opaque", {
      reason: "SecretConflict",
    }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), TerminalError);
  const linked = h.kube.calls.filter((c) => c[0] === "linkSecret").map((c) => c[1]);
  assert.deepEqual(linked, ["default", "deployer"]);
  assert.equal(h.ctx.memory.outcomes.get("team")?.reason, "SecretConflict");
  h.caches.close();
});

Deno.test("reconcile: deletion deletes the organization, then releases; a failure is retried within the budget only", async () => {
  const deleting = finalized(namespaceView("team", { deleting: true }));
  const h = harness(
    new FixtureCaches().integration("quay").namespace(deleting),
    new ScriptedQuay().seed("openshift_team"),
  );
  const down = () =>
    new QuayApiError("Quay answered 503", { status: 503, route: "DELETE /api/v1/organization/{org}" });
  h.quay.failNext("deleteOrganization", down());
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.deepEqual(
    h.kube.methods(),
    ["markDeletionFailing"],
    "the finalizer is kept while the organization stands",
  );
  assert.equal(h.ctx.memory.outcomes.get("team")?.state, "Deleting");

  // Past the budget: released, and the organization is named for an admin.
  h.clock.now += 300_000;
  h.quay.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.quay.calls, [], "no further attempt");
  assert.deepEqual(h.kube.methods(), ["markDeletionFailing", "recordLeftBehind", "releaseFinalizer"]);
  const listed = h.kube.leftBehind.get(keyOf("quay"));
  assert.deepEqual(listed?.map((e) => [e.organization, e.namespace, e.attempts]), [[
    "openshift_team",
    "team",
    0,
  ]]);
  assert.equal(listed?.[0]?.nextAttemptAt, new Date(h.clock.now + 300_000).toISOString());
  assert.match(listed?.[0]?.lastError ?? "", /503/);
  assert.ok(h.events.some((e) => e.reason === "OrganizationLeftBehind"));
  assert.equal(h.ctx.memory.outcomes.get("team"), undefined);
  assert.equal(h.ctx.memory.deletionFailures.get("team"), undefined);

  // Within the budget, a working Quay: deleted, then released.
  const again = harness(
    new FixtureCaches().integration("quay").namespace(deleting),
    new ScriptedQuay().seed("openshift_team"),
  );
  await reconcileNamespace(again.ctx, "team");
  assert.deepEqual(again.quay.methods(), ["deleteOrganization"]);
  assert.deepEqual(again.kube.methods(), ["releaseFinalizer"]);
  assert.ok(again.events.some((e) => e.reason === "OrganizationDeleted"));
  h.caches.close();
  again.caches.close();
});

Deno.test("reconcile: the first deletion failure is written on the Namespace, and a restarted process keeps that budget", async () => {
  const deleting = finalized(namespaceView("team", { deleting: true }));
  const h = harness(
    new FixtureCaches().integration("quay").namespace(deleting),
    new ScriptedQuay().seed("openshift_team"),
  );
  const down = () =>
    new QuayApiError("Quay answered 500", { status: 500, route: "DELETE /api/v1/organization/{org}" });
  h.quay.failNext("deleteOrganization", down());
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.deepEqual(h.kube.methods(), ["markDeletionFailing"]);
  assert.equal(h.kube.deletionMarks.get("team"), h.clock.now);
  const markedAt = h.clock.now;

  // The watch delivers the annotation; a later failure does not move it.
  const annotated = {
    ...deleting,
    annotations: {
      ...deleting.annotations,
      [DELETION_FAILING_SINCE_ANNOTATION]: new Date(markedAt).toISOString(),
    },
  };
  h.caches.namespace(annotated);
  h.clock.now += 60_000;
  h.quay.failNext("deleteOrganization", down());
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.deepEqual(h.kube.methods(), ["markDeletionFailing"], "written once");

  // A restart: the memory is empty, the Namespace still says since when. Past the budget counted from
  // the first failure, the namespace is released without another attempt.
  h.ctx.memory.deletionFailures.clear();
  h.clock.now = markedAt + 300_000;
  h.quay.calls.length = 0;
  await reconcileNamespace({ ...h.ctx, memory: namespaceMemory() }, "team");
  assert.deepEqual(h.quay.calls, []);
  assert.deepEqual(h.kube.methods(), ["markDeletionFailing", "recordLeftBehind", "releaseFinalizer"]);
  const leftBehind = h.events.find((e) => e.reason === "OrganizationLeftBehind");
  assert.match(leftBehind?.message ?? "", /after 300 s \(failing since before this process started\)/);
  h.caches.close();
});

Deno.test("reconcile: an organization given up on is listed before the finalizer goes; if listing fails, the finalizer stays", async () => {
  const deleting = finalized(namespaceView("team", {
    deleting: true,
    annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: new Date(1_000_000 - 300_000).toISOString() },
  }));
  const h = harness(new FixtureCaches().integration("quay").namespace(deleting), new ScriptedQuay());
  h.kube.failNext("recordLeftBehind", new ConflictError("QuayIntegration quay kept changing"));
  await assert.rejects(reconcileNamespace(h.ctx, "team"), ConflictError);
  assert.deepEqual(h.kube.methods(), ["recordLeftBehind"], "not released");
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.kube.methods(), ["recordLeftBehind", "recordLeftBehind", "releaseFinalizer"]);
  assert.equal(h.kube.leftBehind.get(keyOf("quay"))?.length, 1);
  h.caches.close();
});

Deno.test("reconcile after a restart: the cluster's evidence stands for Quay while the audit log is followed; a suspect, an untrusted log or a changed want reads Quay", async () => {
  const h = harness(newProject());
  let digest = "";
  (h.kube as NamespaceKubePort).recordSynced = (_ns, _annotation, d) => {
    digest = d;
    return Promise.resolve();
  };
  await reconcileNamespace(h.ctx, "team");
  assert.notEqual(digest, "", "a synced namespace records what was synced");
  observeWrites(h);
  const ns = h.caches.namespaceMap.get("team");
  assert.ok(ns);
  h.caches.namespace({ ...ns, annotations: { ...ns.annotations, [SYNCED_ANNOTATION]: digest } });
  const following = (trusted: boolean): AuditState => ({
    kind: "following",
    trusted,
    cursor: { at: 0, seen: [] },
  });
  const restarted = (trusted: boolean): NamespaceContext => ({
    ...h.ctx,
    memory: namespaceMemory(),
    audit: { state: () => following(trusted) },
    auditedResyncMs: 43_200_000,
    random: () => 0.5,
  });

  h.quay.calls.length = 0;
  const ctx = restarted(true);
  const action = await reconcileNamespace(ctx, "team");
  assert.deepEqual(h.quay.methods(), [], "no Quay call");
  assert.equal(ctx.memory.outcomes.get("team")?.state, "Ready");
  // The safety-net re-read is spread over the long resync: half of it is left here (random 0.5).
  assert.ok("requeueAfterMs" in action && action.requeueAfterMs <= 0.6 * 43_200_000, JSON.stringify(action));

  // A new ImageStream on the inferred mirror costs its repository only.
  h.caches.imageStream("team", "api");
  await reconcileNamespace(ctx, "team");
  assert.deepEqual(h.quay.methods(), ["createRepository"]);

  // The audit log named the organization before it was read: Quay is read.
  const suspect = restarted(true);
  suspect.memory.suspects.add(`${keyOf("quay")}|openshift_team`);
  await reconcileNamespace(suspect, "team");
  assert.ok(h.quay.methods().includes("listRobots"));

  // The log since the last run was not read in full: Quay is read.
  h.quay.calls.length = 0;
  await reconcileNamespace(restarted(false), "team");
  assert.ok(h.quay.methods().includes("listRobots"));

  // An ImageStream added while no operator ran: the digest differs, Quay is read, the repository made.
  h.quay.calls.length = 0;
  h.caches.imageStream("team", "web");
  await reconcileNamespace(restarted(true), "team");
  assert.ok(h.quay.methods().includes("listRepositories"));
  assert.ok(h.quay.methods().includes("createRepository"));
  h.caches.close();
});

Deno.test("reconcile: an organization Quay reports gone drops the mirror; the next pass re-reads and repairs it", async () => {
  const h = harness(newProject());
  await reconcileNamespace(h.ctx, "team");
  observeWrites(h);
  // Deleted by hand in Quay (no audit log followed), then a new ImageStream: the fresh mirror still
  // says the organization exists, so the plan creates only the repository, which Quay refuses.
  h.quay.organizations.delete("openshift_team");
  h.caches.imageStream("team", "web");
  h.quay.calls.length = 0;
  await assert.rejects(
    reconcileNamespace(h.ctx, "team"),
    (e: unknown) =>
      e instanceof QuayApiError && e.reason === "OrganizationNotFound" && e.retry === "transient",
  );
  assert.deepEqual(h.quay.methods(), ["createRepository"], "the pass planned from the fresh mirror");
  assert.equal(h.ctx.memory.outcomes.get("team")?.reason, "OrganizationNotFound");
  assert.equal(h.ctx.memory.organizations.size, 0, "the mirror is dropped");

  // The retry (seconds later, far within the resync) reads Quay and re-creates what is missing.
  h.clock.now += 5_000;
  h.quay.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.quay.methods().slice(0, 2), ["getOrganization", "createOrganization"]);
  assert.deepEqual(
    h.quay.calls.filter((c) => c[0] === "createRepository").map((c) => c[2]).sort(),
    ["app", "web"],
  );
  assert.equal(h.ctx.memory.outcomes.get("team")?.state, "Ready");
  h.caches.close();
});

Deno.test("reconcile: a repository Quay reports gone drops the mirror; other failures keep it", async () => {
  const h = harness(newProject());
  await reconcileNamespace(h.ctx, "team");
  observeWrites(h);
  h.caches.imageStream("team", "web");
  h.quay.failNext(
    "createRepository",
    new QuayApiError("Quay answered 503", { status: 503, route: "POST /api/v1/repository" }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.equal(h.ctx.memory.organizations.size, 1, "a transient failure says nothing about the mirror");

  h.quay.failNext(
    "createRepository",
    new QuayApiError("Repository openshift_team/web does not exist", {
      status: 404,
      route: "POST /api/v1/repository",
      reason: "RepositoryNotFound",
      retry: "transient",
    }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.equal(h.ctx.memory.organizations.size, 0);
  h.quay.calls.length = 0;
  await reconcileNamespace(h.ctx, "team");
  assert.deepEqual(h.quay.methods().slice(0, 4), [
    "getOrganization",
    "listRobots",
    "listPrototypes",
    "listRepositories",
  ]);
  assert.equal(h.ctx.memory.outcomes.get("team")?.state, "Ready");
  h.caches.close();
});

Deno.test("reconcile: the sync evidence vouches for Quay alone — not written when Quay fails, written when only a link fails", async () => {
  const h = harness(newProject());
  const recorded: string[] = [];
  (h.kube as NamespaceKubePort).recordSynced = (_ns, _annotation, digest) => {
    recorded.push(digest);
    return Promise.resolve();
  };
  h.quay.failNext(
    "createRobot",
    new QuayApiError("Quay answered 500", {
      status: 500,
      route: "PUT /api/v1/organization/{org}/robots/{robot}",
    }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), QuayApiError);
  assert.deepEqual(recorded, [], "Quay is not as wanted: nothing vouches for it");
  assert.equal(h.kube.secrets.size, 0);

  h.kube.failNext(
    "linkSecret",
    new TerminalError("ServiceAccount builder is immutable here", { reason: "Test" }),
  );
  await assert.rejects(reconcileNamespace(h.ctx, "team"), TerminalError);
  assert.equal(recorded.length, 1, "Quay is as wanted although a link failed");
  assert.equal(h.kube.secrets.size, 3);
  h.caches.close();
});
