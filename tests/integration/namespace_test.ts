/**
 * The seed walkthrough's namespace part and the Quay call budgets, against the test world.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";

const ORG = "openshift_e2e-demo";
const SAS = ["builder", "default", "deployer"] as const;

/** The calls of a namespace's sync: without the audit log's polls, which run every interval whatever happens. */
function syncCalls(calls: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(calls).filter(([route]) => !route.startsWith("GET /api/v1/superuser/")),
  );
}

async function withBridge(fn: (b: Bridge) => Promise<void>, flags?: string[]): Promise<void> {
  const bridge = await startBridge({ flags });
  try {
    await fn(bridge);
  } finally {
    await bridge.close();
  }
}

Deno.test("a new project gets its organization, robots, permissions, secrets and SA links; deleting it removes the organization", async () => {
  await withBridge(async (b) => {
    await b.createProject("e2e-demo");
    await synced(b, "e2e-demo");

    const org = await b.quay.ok("GET", `/api/v1/organization/${ORG}`);
    assert.equal(org.name, ORG);
    const robots = await b.quay.ok("GET", `/api/v1/organization/${ORG}/robots?token=true`);
    assert.deepEqual(
      robots.robots.map((r: { name: string }) => r.name).sort(),
      SAS.map((sa) => `${ORG}+${sa}`),
    );
    const prototypes = await b.quay.ok("GET", `/api/v1/organization/${ORG}/prototypes`);
    const roles = Object.fromEntries(
      prototypes.prototypes.map((
        p: { delegate: { name: string }; role: string },
      ) => [p.delegate.name, p.role]),
    );
    assert.deepEqual(roles, {
      [`${ORG}+builder`]: "write",
      [`${ORG}+default`]: "read",
      [`${ORG}+deployer`]: "read",
    });

    for (const sa of SAS) {
      const secret = await b.kube.ok("GET", `/api/v1/namespaces/e2e-demo/secrets/${sa}-quay-openshift`);
      assert.equal(secret.type, "kubernetes.io/dockerconfigjson");
      const config = JSON.parse(atob(secret.data[".dockerconfigjson"]));
      const auth = config.auths[b.quayWorld.registryHost];
      assert.ok(auth, `auth for ${b.quayWorld.registryHost} in ${sa}'s secret`);
      const robot = robots.robots.find((r: { name: string }) => r.name === `${ORG}+${sa}`);
      assert.equal(atob(auth.auth), `${ORG}+${sa}:${robot.token}`);
      const account = await b.kube.ok("GET", `/api/v1/namespaces/e2e-demo/serviceaccounts/${sa}`);
      assert.ok(account.secrets.some((s: { name: string }) => s.name === `${sa}-quay-openshift`));
    }
    // One Event on the namespace says what the pass did; no token appears in any Event or log line.
    const reasons = await until("Events for the namespace", async () => {
      const events = await b.kube.ok("GET", "/api/v1/events");
      const mine = events.items.filter((
        e: { involvedObject: { kind: string; name: string }; type: string },
      ) =>
        e.involvedObject.kind === "Namespace" && e.involvedObject.name === "e2e-demo" && e.type === "Normal"
      );
      return mine.length > 0 ? { events, mine } : undefined;
    });
    assert.equal(reasons.mine.length, 1, JSON.stringify(reasons.mine));
    assert.equal(reasons.mine[0].reason, "OrganizationCreated");
    const message: string = reasons.mine[0].message;
    assert.ok(message.startsWith(`Created Quay organization ${ORG}; `), message);
    for (const sa of SAS) {
      assert.ok(message.includes(`Created robot ${ORG}+${sa}`), message);
      assert.ok(message.includes(`Robot ${ORG}+${sa} gets`), message);
      assert.ok(message.includes(`Created Secret ${sa}-quay-openshift`), message);
    }
    const tokens = [b.quayWorld.adminToken, ...robots.robots.map((r: { token: string }) => r.token)];
    const texts = [JSON.stringify(reasons.events), ...b.logs.map((l) => JSON.stringify(l))];
    for (const token of tokens) {
      assert.ok(!texts.some((t) => t.includes(token)), "a token leaked into an Event or a log line");
    }
    // The operator runs with deploy/rbac only: nothing it did was forbidden.
    const forbidden = b.logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
    assert.deepEqual(forbidden, []);
    const ns = await b.kube.ok("GET", "/api/v1/namespaces/e2e-demo");
    assert.ok(ns.metadata.finalizers.includes("quay.redhat.com/quayintegrations"), ns.metadata.finalizers);

    await b.kube.ok("DELETE", "/api/v1/namespaces/e2e-demo");
    await until("namespace gone", async () => {
      return (await b.kube.call("GET", "/api/v1/namespaces/e2e-demo")).status === 404;
    }, 15_000);
    assert.equal((await b.quay.call("GET", `/api/v1/organization/${ORG}`)).status, 404);
  });
});

Deno.test("each ImageStream gets a private repository; provisioning spends at most 8 + R Quay calls", async () => {
  await withBridge(async (b) => {
    // Let the integration's own checks (user, credentials) settle before counting.
    await b.createProject("warmup");
    await synced(b, "warmup");
    await new Promise((r) => setTimeout(r, 300));
    b.quayWorld.resetCalls();

    await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "apps" } });
    for (const is of ["frontend", "backend", "worker"]) {
      await b.kube.ok("POST", "/apis/image.openshift.io/v1/namespaces/apps/imagestreams", {
        metadata: { name: is },
      });
    }
    for (const sa of SAS) {
      await b.kube.ok("POST", "/api/v1/namespaces/apps/serviceaccounts", { metadata: { name: sa } });
    }
    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/apps",
      { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c1,c2" } } },
      "application/merge-patch+json",
    );
    await synced(b, "apps");
    let polls = 0;
    const repos = await until("three repositories", async () => {
      polls++;
      const list = await b.quay.ok("GET", "/api/v1/repository?namespace=openshift_apps");
      return list.repositories.length === 3 ? list.repositories : undefined;
    });
    for (const repo of repos) assert.equal(repo.is_public, false);
    await new Promise((r) => setTimeout(r, 300));
    // The test's own polls of the repository list are not the operator's.
    const calls = Object.values(syncCalls(b.quayWorld.calls())).reduce((a, n) => a + n, 0) - polls;
    assert.ok(calls <= 8 + 3, `provisioning spent ${calls} calls: ${JSON.stringify(b.quayWorld.calls())}`);

    // An ImageStream event for a known repository costs nothing.
    b.quayWorld.resetCalls();
    await b.kube.ok(
      "PATCH",
      "/apis/image.openshift.io/v1/namespaces/apps/imagestreams/frontend",
      { metadata: { labels: { touched: "yes" } } },
      "application/merge-patch+json",
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(syncCalls(b.quayWorld.calls()), {});
  });
});

Deno.test("a periodic resync of a synced namespace lists robots, prototypes and repositories once each", async () => {
  await withBridge(async (b) => {
    await b.createProject("steady");
    await synced(b, "steady");
    await new Promise((r) => setTimeout(r, 300));
    b.quayWorld.resetCalls();
    // The resync period is 1s: wait for one resync.
    // The credentials check (`GET /api/v1/user/`, once per period per CR) is not the namespace's.
    const resyncCalls = () =>
      Object.fromEntries(
        Object.entries(b.quayWorld.calls()).filter(([route]) => route !== "GET /api/v1/user/"),
      );
    await until("a resync", () => Object.keys(resyncCalls()).length > 0 ? true : undefined, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const calls = resyncCalls();
    const total = Object.values(calls).reduce((a, n) => a + n, 0);
    assert.ok(total <= 3, `resync spent ${total}: ${JSON.stringify(calls)}`);
  }, ["--resync", "1s", "--audit-interval", "0"]);
});

Deno.test("an OpenShift project is provisioned only once OpenShift has annotated it (openshift.io/sa.scc.mcs)", async () => {
  await withBridge(async (b) => {
    await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "young" } });
    for (const sa of SAS) {
      await b.kube.ok("POST", "/api/v1/namespaces/young/serviceaccounts", { metadata: { name: sa } });
    }
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_young")).status, 404);
    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/young",
      { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c5,c6" } } },
      "application/merge-patch+json",
    );
    await synced(b, "young");
  });
});
