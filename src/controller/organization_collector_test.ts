/**
 * The organization collector against scripted ports: a due left-behind organization is deleted and
 * its entry removed; a failure is retried with doubling backoff; an organization a selected namespace
 * maps to again is kept and its entry dropped; a namespace of that name postpones the attempt;
 * `Retain` deletes nothing.
 */
import assert from "node:assert/strict";
import { QuayApiError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { FixtureCaches, integrationObject, keyOf, namespaceView, ScriptedQuay } from "./fixtures.ts";
import type { LeftBehindOrganization, LeftBehindStore } from "./left_behind.ts";
import { type CollectorContext, leftBehindCounts, reconcileLeftBehind } from "./organization_collector.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const BASE = 300_000;

function entry(organization: string, extra: Partial<LeftBehindOrganization> = {}): LeftBehindOrganization {
  return {
    organization,
    namespace: organization.replace(/^openshift_/, ""),
    since: new Date(NOW - BASE).toISOString(),
    attempts: 0,
    nextAttemptAt: new Date(NOW).toISOString(),
    lastError: "Quay answered 500",
    ...extra,
  };
}

function harness(entries: LeftBehindOrganization[], spec: Record<string, unknown> = {}) {
  const caches = new FixtureCaches().integration("quay", spec);
  const key = keyOf("quay");
  const status = { leftBehindOrganizations: entries };
  caches.registry.set(key, { ...integrationObject("quay", spec), status });
  const quay = new ScriptedQuay();
  for (const e of entries) quay.seed(e.organization, ["builder"]);
  const events: { type: string; reason: string; message: string }[] = [];
  const store: LeftBehindStore & { list: LeftBehindOrganization[] } = {
    list: [...entries],
    update(_key, change) {
      const next = change(this.list);
      if (next) this.list = next;
      return Promise.resolve(true);
    },
  };
  const ctx: CollectorContext = {
    registry: caches.registry,
    quay: () => quay,
    namespaces: caches.namespaces,
    store,
    events: { emit: (_t, type, reason, message) => events.push({ type, reason, message }) },
    logger: silentLogger,
    retryBaseMs: BASE,
    now: () => NOW,
  };
  return { caches, key, quay, events, store, ctx };
}

Deno.test("collector: a due left-behind organization is deleted and its entry removed", async () => {
  const h = harness([
    entry("openshift_gone"),
    entry("openshift_later", { nextAttemptAt: "2026-01-01T00:10:00Z" }),
  ]);
  const action = await reconcileLeftBehind(h.ctx, h.key);
  assert.deepEqual(h.quay.calls, [["deleteOrganization", "openshift_gone"]], "only the due one");
  assert.equal(h.quay.organizations.has("openshift_gone"), false);
  assert.deepEqual(h.store.list.map((e) => e.organization), ["openshift_later"]);
  assert.deepEqual(h.events.map((e) => e.reason), ["OrganizationCollected"]);
  assert.deepEqual(action, { requeueAfterMs: 600_000 }, "woken when the next one is due");
  assert.deepEqual(
    leftBehindCounts(h.caches.registry),
    [{ integration: "quay", count: 2 }],
    "as the cache says",
  );
  h.caches.close();
});

Deno.test("collector: a failed deletion is retried with doubling backoff, and says why", async () => {
  const h = harness([entry("openshift_gone", { attempts: 2 })]);
  h.quay.failNext(
    "deleteOrganization",
    new QuayApiError("Quay answered 503", { status: 503, route: "DELETE /api/v1/organization/{org}" }),
  );
  const action = await reconcileLeftBehind(h.ctx, h.key);
  const [after] = h.store.list;
  assert.equal(after?.attempts, 3);
  assert.equal(after?.nextAttemptAt, new Date(NOW + BASE * 8).toISOString());
  assert.match(after?.lastError ?? "", /503/);
  assert.deepEqual(h.events.map((e) => [e.type, e.reason]), [["Warning", "OrganizationCollectionFailed"]]);
  assert.deepEqual(action, { requeueAfterMs: BASE * 8 });
  h.caches.close();
});

Deno.test("collector: an organization a selected namespace maps to again is kept, and its entry dropped", async () => {
  const h = harness([entry("openshift_back")]);
  h.caches.namespace(namespaceView("back"));
  await reconcileLeftBehind(h.ctx, h.key);
  assert.deepEqual(h.quay.calls, [], "never deleted");
  assert.deepEqual(h.store.list, []);
  assert.deepEqual(h.events.map((e) => e.reason), ["OrganizationReclaimed"]);
  h.caches.close();
});

Deno.test("collector: a namespace of that name that nothing selects postpones the attempt", async () => {
  const h = harness([entry("openshift_other")], { denylistNamespaces: ["other"] });
  h.caches.namespace(namespaceView("other"));
  await reconcileLeftBehind(h.ctx, h.key);
  assert.deepEqual(h.quay.calls, []);
  assert.equal(h.store.list[0]?.attempts, 1);
  assert.match(h.store.list[0]?.lastError ?? "", /namespace named other exists again/);
  h.caches.close();
});

Deno.test("collector: with organizationDeletionPolicy Retain nothing is deleted and the entries stay", async () => {
  const h = harness([entry("openshift_gone")], { organizationDeletionPolicy: "Retain" });
  const action = await reconcileLeftBehind(h.ctx, h.key);
  assert.deepEqual(h.quay.calls, []);
  assert.equal(h.store.list.length, 1);
  assert.deepEqual(action, { awaitChange: true });
  h.caches.close();
});
