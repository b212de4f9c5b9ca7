/**
 * Table tests of the namespace planner: every gate and every outcome, from facts alone (no API, no
 * world). Each row builds caches, gathers the facts as the reconcile does, and checks the whole
 * plan: outcome, finalizer, Quay and cluster changes, Events and requeue.
 */
import assert from "node:assert/strict";
import { finalized, FixtureCaches, namespaceView } from "./fixtures.ts";
import { readNamespaceFacts } from "./namespace_facts.ts";
import { dockerConfig } from "./cluster_plan.ts";
import { type NamespacePlan, planNamespace } from "./namespace_plan.ts";
import {
  DELETION_FAILING_SINCE_ANNOTATION,
  REPOSITORY_MARKER,
  ROTATE_ANNOTATION,
  ROTATED_AT_ANNOTATION,
  ROTATION_HANDLED_ANNOTATION,
} from "../names.ts";
import { type KnownOrganization, unknownOrganization } from "./quay_plan.ts";

const SETTINGS = { resyncMs: 600_000, deletionBudgetMs: 300_000 };
const NOW = 1_000_000;
const ORG = "openshift_team";

/** A complete mirror of `openshift_team`: three robots, their prototypes, repositories as given. */
function syncedMirror(repositories: Record<string, string> = {}): KnownOrganization {
  const known = unknownOrganization();
  known.exists = true;
  known.observedAt = NOW - 1_000;
  for (const [sa, role] of [["builder", "write"], ["default", "read"], ["deployer", "read"]] as const) {
    known.robots.set(sa, `tok-${sa}`);
    known.prototypes.set(`${ORG}+${sa}`, { id: `p-${sa}`, role });
  }
  for (const [name, description] of Object.entries(repositories)) known.repositories.set(name, description);
  return known;
}

/** Secrets and links that match {@linkcode syncedMirror}, the Secrets annotated as given. */
function syncedCluster(c: FixtureCaches, annotations: Record<string, string> = {}): FixtureCaches {
  c.accounts("team", ["builder", "default", "deployer"], ["openshift"]);
  for (const sa of ["builder", "default", "deployer"]) {
    const config = dockerConfig("quay.example.com", `${ORG}+${sa}`, `tok-${sa}`);
    c.secret("team", `${sa}-quay-openshift`, config, "kubernetes.io/dockerconfigjson", annotations);
  }
  return c;
}

const HOUR = 3_600_000;
/** `credentials-rotated-at` of a token issued `ago` ms before NOW. */
const issued = (ago: number) => ({ [ROTATED_AT_ANNOTATION]: new Date(NOW - ago).toISOString() });
const ROTATE_ALL = ["rotateRobot:builder", "rotateRobot:default", "rotateRobot:deployer"];
const UPDATE_ALL = ["builder", "default", "deployer"].map((sa) => `updateSecret:${sa}-quay-openshift`);

interface Row {
  readonly name: string;
  readonly caches: (c: FixtureCaches) => FixtureCaches;
  readonly known?: KnownOrganization;
  readonly deletionFailure?: { since: number; error: string };
  readonly namespace?: string;
  readonly expect: {
    readonly state?: string | undefined;
    readonly reason?: string | undefined;
    readonly finalizer?: NamespacePlan["finalizer"];
    readonly quay?: string[];
    readonly cluster?: string[];
    readonly events?: string[];
    readonly requeue?: NamespacePlan["requeue"]["kind"];
  };
}

const team = namespaceView("team");

const ROWS: Row[] = [
  { name: "a namespace that is gone is forgotten", caches: (c) => c, expect: { state: undefined } },
  {
    name: "no QuayIntegration: left alone",
    caches: (c) => c.namespace(team),
    expect: { state: "Unmanaged", reason: "NotSelected", finalizer: "keep", events: [] },
  },
  {
    name: "no longer selected: the finalizer is released, Quay untouched",
    caches: (c) => c.namespace(finalized(team)).integration("quay", { denylistNamespaces: ["team"] }),
    expect: { state: "Unmanaged", finalizer: "release", quay: [], events: ["NamespaceUnmanaged"] },
  },
  {
    name: "only an invalid QuayIntegration would select it: nothing changes, an Event names it",
    caches: (c) => c.namespace(team).integration("typo", { quayHostname: "https://quay.example.com/path" }),
    expect: {
      state: "Waiting",
      reason: "IntegrationInvalid",
      finalizer: "keep",
      quay: [],
      events: ["IntegrationInvalid"],
    },
  },
  {
    name: "an invalid QuayIntegration whose selector cannot be parsed selects nothing",
    caches: (c) =>
      c.namespace(team).integration("broken", {
        quayHostname: "",
        namespaceSelector: { matchExpressions: [{ key: "x", operator: "Bogus" }] },
      }),
    expect: { state: "Unmanaged", reason: "NotSelected", events: [] },
  },
  {
    name: "an invalid QuayIntegration that would not select it changes nothing",
    caches: (c) =>
      c.namespace(team).integration("typo", { clusterID: "x.-y", allowlistNamespaces: ["other"] }),
    expect: { state: "Unmanaged", reason: "NotSelected" },
  },
  {
    name: "a valid QuayIntegration wins over an invalid one selecting the same namespace",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(team)).integration("quay").integration("typo", { clusterID: "x.-y" }),
      ),
    known: syncedMirror(),
    expect: { state: "Ready", reason: "Synced", quay: [], cluster: [] },
  },
  {
    name: "two valid QuayIntegrations: an overlap, reported, nothing synced",
    caches: (c) => c.namespace(team).integration("one").integration("two"),
    expect: {
      state: "Overlap",
      reason: "OverlappingIntegrations",
      quay: [],
      events: ["OverlappingIntegrations"],
    },
  },
  {
    name: "an organization name Quay refuses",
    namespace: "a--b",
    caches: (c) => c.namespace(namespaceView("a--b")).integration("quay"),
    expect: { state: "Failed", reason: "InvalidOrganizationName", events: ["InvalidOrganizationName"] },
  },
  {
    name: "no token in the Secret",
    caches: (c) => c.namespace(team).integration("quay", {}, null),
    expect: { state: "Waiting", reason: "CredentialsUnavailable", finalizer: "keep", quay: [] },
  },
  {
    name: "a token Quay rejected",
    caches: (c) => {
      c.namespace(team).integration("quay");
      c.registry.rejectToken("quay.redhat.com/v1/quay", "Quay answered 401");
      return c;
    },
    expect: { state: "Waiting", reason: "CredentialsUnavailable", quay: [] },
  },
  {
    name: "OpenShift has not finished the project",
    caches: (c) => c.namespace(namespaceView("team", { annotations: {} })).integration("quay"),
    expect: { state: "Waiting", reason: "WaitingForProject", finalizer: "keep" },
  },
  {
    name: "no service account with write access",
    caches: (c) =>
      c.namespace(team).integration("quay", { serviceAccounts: { default: "read" } }).accounts("team"),
    known: unknownOrganization(),
    expect: { state: "Waiting", reason: "NoPushServiceAccount" },
  },
  {
    name: "a new namespace: finalizer, organization, robots, prototypes, repository, Secrets, links",
    caches: (c) => c.namespace(team).integration("quay").accounts("team").imageStream("team", "app"),
    known: unknownOrganization(),
    expect: {
      state: "Ready",
      reason: "Synced",
      finalizer: "add",
      quay: [
        "createOrganization",
        "createRobot:builder",
        "createRobot:default",
        "createRobot:deployer",
        "createPrototype:builder",
        "createPrototype:default",
        "createPrototype:deployer",
        "createRepository:app",
      ],
      cluster: [
        "createSecret:builder-quay-openshift",
        "linkSecret:builder-quay-openshift",
        "createSecret:default-quay-openshift",
        "linkSecret:default-quay-openshift",
        "createSecret:deployer-quay-openshift",
        "linkSecret:deployer-quay-openshift",
      ],
      requeue: "after",
    },
  },
  {
    name: "a service account not created yet: its Secret is written, the link waits",
    caches: (c) => c.namespace(finalized(team)).integration("quay").accounts("team", ["builder", "default"]),
    known: syncedMirror(),
    expect: {
      state: "Waiting",
      reason: "ServiceAccountMissing",
      cluster: [
        "createSecret:builder-quay-openshift",
        "linkSecret:builder-quay-openshift",
        "createSecret:default-quay-openshift",
        "linkSecret:default-quay-openshift",
        "createSecret:deployer-quay-openshift",
      ],
      events: ["ServiceAccountMissing"],
    },
  },
  {
    name: "in sync: nothing to do, look again at the resync",
    caches: (c) => syncedCluster(c.namespace(finalized(team)).integration("quay")),
    known: syncedMirror(),
    expect: { state: "Ready", finalizer: "keep", quay: [], cluster: [], events: [], requeue: "after" },
  },
  {
    name: "the predecessor's finalizer is replaced by ours",
    caches: (c) => syncedCluster(c.namespace(finalized(team, true)).integration("quay")),
    known: syncedMirror(),
    expect: { state: "Ready", finalizer: "add", quay: [], cluster: [] },
  },
  {
    name: "a robot token changed in Quay: its Secret is updated",
    caches: (c) => {
      syncedCluster(c.namespace(finalized(team)).integration("quay"));
      return c.secret("team", "builder-quay-openshift", "c3RhbGU=");
    },
    known: syncedMirror(),
    expect: { state: "Ready", cluster: ["updateSecret:builder-quay-openshift"] },
  },
  {
    name:
      "rotation requested by a namespace annotation: every robot's token regenerated, its Secret rewritten",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(namespaceView("team", {
          annotations: { ...team.annotations, [ROTATE_ANNOTATION]: "1" },
        }))).integration("quay"),
      ),
    known: syncedMirror(),
    expect: { state: "Ready", quay: ROTATE_ALL, cluster: UPDATE_ALL, requeue: "after" },
  },
  {
    name: "a rotation request the Secrets already answer: nothing to do",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(namespaceView("team", {
          annotations: { ...team.annotations, [ROTATE_ANNOTATION]: "1" },
        }))).integration("quay"),
        { ...issued(HOUR), [ROTATION_HANDLED_ANNOTATION]: "1" },
      ),
    known: syncedMirror(),
    expect: { state: "Ready", quay: [], cluster: [] },
  },
  {
    name: "a rotation request whose Secret write is pending: the new token is written, not regenerated again",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(namespaceView("team", {
          annotations: { ...team.annotations, [ROTATE_ANNOTATION]: "1" },
        }))).integration("quay"),
      ).secret("team", "builder-quay-openshift", "c3RhbGU="),
    known: syncedMirror(),
    expect: {
      state: "Ready",
      quay: ["rotateRobot:default", "rotateRobot:deployer"],
      cluster: UPDATE_ALL,
    },
  },
  {
    name: "interval 1h, tokens 10 min old: not due, nothing to do",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(team)).integration("quay", { credentialRotation: { interval: "1h" } }),
        issued(HOUR / 6),
      ),
    known: syncedMirror(),
    expect: { state: "Ready", quay: [], cluster: [], requeue: "after" },
  },
  {
    name: "interval 1h, tokens 1h old: due, all rotated",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(team)).integration("quay", { credentialRotation: { interval: "1h" } }),
        issued(HOUR),
      ),
    known: syncedMirror(),
    expect: { state: "Ready", quay: ROTATE_ALL, cluster: UPDATE_ALL },
  },
  {
    name: "interval set, Secrets without the stamp: stamped now, not rotated",
    caches: (c) =>
      syncedCluster(
        c.namespace(finalized(team)).integration("quay", { credentialRotation: { interval: "1h" } }),
      ),
    known: syncedMirror(),
    expect: { state: "Ready", quay: [], cluster: UPDATE_ALL },
  },
  {
    name: "no interval, old tokens: never rotated on a schedule",
    caches: (c) => syncedCluster(c.namespace(finalized(team)).integration("quay"), issued(1000 * HOUR)),
    known: syncedMirror(),
    expect: { state: "Ready", quay: [], cluster: [] },
  },
  {
    name: "an ImageStream name Quay refuses: an Event, no repository",
    caches: (c) =>
      syncedCluster(c.namespace(finalized(team)).integration("quay")).imageStream("team", "-bad"),
    known: syncedMirror(),
    expect: { state: "Ready", quay: [], events: ["InvalidRepositoryName"] },
  },
  {
    name: "repositoryDeletionPolicy Delete: only our repositories without an ImageStream are deleted",
    caches: (c) =>
      syncedCluster(c.namespace(finalized(team)).integration("quay", { repositoryDeletionPolicy: "Delete" })),
    known: syncedMirror({ ours: `${REPOSITORY_MARKER} team/ours`, theirs: "made by hand" }),
    expect: { state: "Ready", quay: ["deleteRepository:ours"] },
  },
  {
    name: "deleting without our finalizer: nothing to do",
    caches: (c) => c.namespace(namespaceView("team", { deleting: true })).integration("quay"),
    expect: { state: undefined, finalizer: "keep", quay: [] },
  },
  {
    name: "deleting: the organization is deleted, then the finalizer released",
    caches: (c) => c.namespace(finalized(namespaceView("team", { deleting: true }))).integration("quay"),
    expect: { state: "Deleting", finalizer: "release", quay: ["deleteOrganization"] },
  },
  {
    name: "deleting with organizationDeletionPolicy Retain: kept, released",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", { deleting: true }))).integration("quay", {
        organizationDeletionPolicy: "Retain",
      }),
    expect: { state: undefined, finalizer: "release", quay: [], events: ["OrganizationRetained"] },
  },
  {
    name: "deleting without credentials: retried within the budget, finalizer kept",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", { deleting: true }))).integration("quay", {}, null),
    expect: {
      state: "Deleting",
      finalizer: "keep",
      quay: [],
      events: ["OrganizationDeletionFailed"],
      requeue: "retry",
    },
  },
  {
    name: "deleting past the budget: released, the organization left behind with an Event",
    caches: (c) => c.namespace(finalized(namespaceView("team", { deleting: true }))).integration("quay"),
    deletionFailure: { since: NOW - 300_000, error: "Quay answered 500" },
    expect: { state: undefined, finalizer: "release", quay: [], events: ["OrganizationLeftBehind"] },
  },
  {
    name: "deleting, failing since before a restart (the Namespace's annotation) past the budget: released",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", {
        deleting: true,
        annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: new Date(NOW - 300_000).toISOString() },
      }))).integration("quay"),
    expect: { state: undefined, finalizer: "release", quay: [], events: ["OrganizationLeftBehind"] },
  },
  {
    name: "deleting, the annotation is earlier than this process's memory: the annotation's budget counts",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", {
        deleting: true,
        annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: new Date(NOW - 400_000).toISOString() },
      }))).integration("quay"),
    deletionFailure: { since: NOW - 10_000, error: "Quay answered 500" },
    expect: { state: undefined, finalizer: "release", quay: [], events: ["OrganizationLeftBehind"] },
  },
  {
    name: "deleting, annotated failing within the budget: the organization is deleted again",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", {
        deleting: true,
        annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: new Date(NOW - 60_000).toISOString() },
      }))).integration("quay"),
    expect: { state: "Deleting", finalizer: "release", quay: ["deleteOrganization"] },
  },
  {
    name: "deleting, an unreadable failing-since annotation is ignored",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", {
        deleting: true,
        annotations: { [DELETION_FAILING_SINCE_ANNOTATION]: "yesterday" },
      }))).integration("quay"),
    expect: { state: "Deleting", finalizer: "release", quay: ["deleteOrganization"] },
  },
  {
    name: "deleting, no longer selected: released without touching Quay",
    caches: (c) => c.namespace(finalized(namespaceView("team", { deleting: true }))),
    expect: { state: undefined, finalizer: "release", quay: [], events: ["FinalizerReleased"] },
  },
  {
    name: "deleting, selected by an overlap: released without touching Quay",
    caches: (c) =>
      c.namespace(finalized(namespaceView("team", { deleting: true }))).integration("a").integration("b"),
    expect: { state: undefined, finalizer: "release", quay: [], events: ["FinalizerReleased"] },
  },
];

function quayStep(c: NamespacePlan["quay"][number]): string {
  if ("robot" in c && c.kind !== "grantRepository") return `${c.kind}:${c.robot.shortName}`;
  if ("repository" in c) return `${c.kind}:${c.repository}`;
  return c.kind;
}

function clusterStep(c: NamespacePlan["cluster"][number]): string {
  return `${c.kind}:${c.secret}`;
}

for (const row of ROWS) {
  Deno.test(`planner: ${row.name}`, () => {
    const caches = row.caches(new FixtureCaches());
    try {
      const facts = readNamespaceFacts(caches, row.namespace ?? "team", {
        now: NOW,
        settings: SETTINGS,
        deletionFailure: row.deletionFailure,
      });
      const plan = planNamespace(facts, row.known);
      const e = row.expect;
      assert.equal(plan.outcome?.state, e.state, JSON.stringify(plan.outcome));
      if (e.reason) assert.equal(plan.outcome?.reason, e.reason);
      if (e.finalizer) assert.equal(plan.finalizer, e.finalizer);
      if (e.quay) assert.deepEqual(plan.quay.map(quayStep), e.quay);
      if (e.cluster) assert.deepEqual(plan.cluster.map(clusterStep), e.cluster);
      if (e.events) assert.deepEqual(plan.events.map((ev) => ev.reason), e.events);
      if (e.requeue) assert.equal(plan.requeue.kind, e.requeue);
    } finally {
      caches.close();
    }
  });
}

Deno.test("planner: the invalid QuayIntegration's Event names it and its reason", () => {
  const caches = new FixtureCaches().namespace(team).integration("typo", { clusterID: "x.-y" });
  const plan = planNamespace(readNamespaceFacts(caches, "team", { now: NOW, settings: SETTINGS }), undefined);
  assert.match(
    plan.events[0]?.message ?? "",
    /QuayIntegration typo would select .* invalid \(InvalidClusterID: /,
  );
  caches.close();
});

Deno.test("planner: a synced namespace is looked at again when its mirror reaches the resync age", () => {
  const caches = syncedCluster(new FixtureCaches().namespace(finalized(team)).integration("quay"));
  const known = syncedMirror();
  known.observedAt = NOW - 100_000;
  const plan = planNamespace(readNamespaceFacts(caches, "team", { now: NOW, settings: SETTINGS }), known);
  assert.deepEqual(plan.requeue, { kind: "after", ms: 500_000 });
  caches.close();
});

Deno.test("planner: a rotated Secret records the new token's time and the request it answers; the rest keep theirs", () => {
  const ns = namespaceView("team", { annotations: { ...team.annotations, [ROTATE_ANNOTATION]: "r2" } });
  const caches = syncedCluster(
    new FixtureCaches().namespace(finalized(ns)).integration("quay", {
      credentialRotation: { interval: "1h" },
    }),
    { ...issued(HOUR / 6), [ROTATION_HANDLED_ANNOTATION]: "r2" },
  );
  caches.secret(
    "team",
    "builder-quay-openshift",
    dockerConfig("quay.example.com", `${ORG}+builder`, "tok-builder"),
    "kubernetes.io/dockerconfigjson",
    { ...issued(HOUR / 6), [ROTATION_HANDLED_ANNOTATION]: "r1" },
  );
  const settings = { ...SETTINGS, resyncMs: 10 * HOUR };
  const plan = planNamespace(readNamespaceFacts(caches, "team", { now: NOW, settings }), syncedMirror());
  assert.deepEqual(plan.quay.map(quayStep), ["rotateRobot:builder"]);
  assert.deepEqual(
    plan.cluster.map((c) =>
      c.kind === "linkSecret" ? c.kind : [c.secret, c.token, c.rotatedAt, c.rotationHandled]
    ),
    [
      ["builder-quay-openshift", undefined, new Date(NOW).toISOString().replace(".000Z", "Z"), "r2"],
    ],
  );
  // The others fall due 44 to 50 minutes from now: the namespace is looked at again then, before the resync.
  assert.equal(plan.requeue.kind, "after");
  const ms = plan.requeue.kind === "after" ? plan.requeue.ms : 0;
  assert.ok(ms >= 0.9 * HOUR - HOUR / 6 && ms < HOUR - HOUR / 6, `requeue in ${ms} ms`);
  caches.close();
});

Deno.test("planner: an organization given up on at the budget is handed to the collector", () => {
  const caches = new FixtureCaches().namespace(finalized(namespaceView("team", { deleting: true })))
    .integration("quay");
  const facts = readNamespaceFacts(caches, "team", {
    now: NOW,
    settings: SETTINGS,
    deletionFailure: { since: NOW - 300_000, error: "Quay answered 500" },
  });
  const plan = planNamespace(facts, undefined);
  assert.deepEqual(plan.leftBehind, { organization: ORG, namespace: "team", error: "Quay answered 500" });
  assert.match(plan.events[0]?.message ?? "", /status\.leftBehindOrganizations and deleted later/);
  caches.close();
});

Deno.test("planner: a namespace that loses selection revokes nothing, and says so in a warning", () => {
  const caches = new FixtureCaches().namespace(finalized(team)).integration("quay", {
    denylistNamespaces: ["team"],
  });
  const plan = planNamespace(readNamespaceFacts(caches, "team", { now: NOW, settings: SETTINGS }), undefined);
  assert.equal(plan.leftBehind, undefined, "not collected: it may be selected again");
  assert.deepEqual(plan.quay, []);
  assert.equal(plan.events[0]?.type, "Warning");
  assert.match(plan.events[0]?.message ?? "", /left in place with valid credentials/);
  caches.close();
});
