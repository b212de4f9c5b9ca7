/**
 * One decision, three readers: the same facts fed to the namespace reconcile (through scripted
 * ports), to `quay-bridge plan` and to the admission webhook give the same outcome for every case.
 */
import assert from "node:assert/strict";
import { computePlans } from "../cli/plan.ts";
import { silentLogger } from "../log.ts";
import { assessNamespace } from "../webhook/operator_port.ts";
import { finalized, FixtureCaches, keyOf, namespaceView, ScriptedKube, ScriptedQuay } from "./fixtures.ts";
import { namespaceMemory, reconcileNamespace } from "./namespace_controller.ts";

const SETTINGS = { resyncMs: 600_000, deletionBudgetMs: 300_000 };

interface Case {
  readonly name: string;
  /** @default "team" */
  readonly namespace?: string;
  readonly caches: () => FixtureCaches;
  /** The outcome reason all three must report. */
  readonly reason: string;
  /** What the webhook does with a Build there. */
  readonly admission: "unmanaged" | "pending" | "ready";
}

const team = () => namespaceView("team");
const CASES: Case[] = [
  {
    name: "not selected",
    caches: () => new FixtureCaches().namespace(team()),
    reason: "NotSelected",
    admission: "unmanaged",
  },
  {
    name: "only an invalid QuayIntegration would select it",
    caches: () => new FixtureCaches().namespace(team()).integration("typo", { clusterID: "x.-y" }),
    reason: "IntegrationInvalid",
    admission: "unmanaged",
  },
  {
    name: "two QuayIntegrations select it",
    caches: () => new FixtureCaches().namespace(team()).integration("a").integration("b"),
    reason: "OverlappingIntegrations",
    admission: "pending",
  },
  {
    name: "its organization name is invalid in Quay",
    namespace: "a--b",
    caches: () => new FixtureCaches().namespace(namespaceView("a--b")).integration("quay"),
    reason: "InvalidOrganizationName",
    admission: "pending",
  },
  {
    name: "no credentials",
    caches: () => new FixtureCaches().namespace(team()).integration("quay", {}, null),
    reason: "CredentialsUnavailable",
    admission: "pending",
  },
  {
    name: "the token was rejected",
    caches: () => {
      const c = new FixtureCaches().namespace(team()).integration("quay");
      c.registry.rejectToken(keyOf("quay"), "Quay answered 401");
      return c;
    },
    reason: "CredentialsUnavailable",
    admission: "pending",
  },
  {
    name: "the project is not finished",
    caches: () =>
      new FixtureCaches().namespace(namespaceView("team", { annotations: {} })).integration("quay"),
    reason: "WaitingForProject",
    admission: "pending",
  },
  {
    name: "no service account may push",
    caches: () =>
      new FixtureCaches().namespace(team()).integration("quay", { serviceAccounts: { default: "read" } })
        .accounts("team", ["default"]),
    reason: "NoPushServiceAccount",
    admission: "pending",
  },
  {
    name: "a service account is missing",
    caches: () =>
      new FixtureCaches().namespace(team()).integration("quay").accounts("team", ["builder"])
        .secret("team", "builder-quay-openshift"),
    reason: "ServiceAccountMissing",
    admission: "ready",
  },
  {
    name: "a new namespace to sync",
    caches: () => new FixtureCaches().namespace(team()).integration("quay").accounts("team"),
    reason: "Synced",
    admission: "pending",
  },
  {
    name: "synced, its push Secret in place",
    caches: () =>
      new FixtureCaches().namespace(finalized(team())).integration("quay").accounts("team")
        .secret("team", "builder-quay-openshift"),
    reason: "Synced",
    admission: "ready",
  },
  {
    name: "being deleted",
    caches: () =>
      new FixtureCaches().namespace(finalized(namespaceView("team", { deleting: true }))).integration("quay"),
    reason: "NamespaceDeleting",
    admission: "unmanaged",
  },
];

for (const c of CASES) {
  Deno.test(`same outcome from the reconcile, plan and the webhook: ${c.name}`, async () => {
    const expected = c;
    const ns = c.namespace ?? "team";
    const quay = new ScriptedQuay();

    // The webhook.
    const webhookCaches = c.caches();
    const target = assessNamespace(webhookCaches, SETTINGS, ns).target;
    assert.equal(target.state, expected.admission, JSON.stringify(target));
    assert.equal(target.outcome, expected.reason, "webhook");
    webhookCaches.close();

    // `quay-bridge plan`; a namespace nothing selects and nothing changes in is not listed.
    const planCaches = c.caches();
    const plans = await computePlans(planCaches, [ns], SETTINGS, () => new ScriptedQuay());
    assert.equal(plans[0]?.reason ?? "NotSelected", expected.reason, "plan");
    planCaches.close();

    // The reconcile.
    const caches = c.caches();
    const memory = namespaceMemory();
    await reconcileNamespace({
      caches,
      kube: new ScriptedKube(),
      quay: () => quay,
      tokens: { rejected: () => {}, accepted: () => {} },
      events: { emit() {} },
      logger: silentLogger,
      settings: SETTINGS,
      memory,
      now: Date.now,
    }, ns).catch(() => {});
    assert.equal(memory.outcomes.get(ns)?.reason, expected.reason, "reconcile");
    caches.close();
  });
}
