/**
 * Changes applied at once (token rotation, clusterID change, namespaceSelector) and a flaky Quay
 * (5xx, 429 with Retry-After) that the client rides out.
 */
import assert from "node:assert/strict";
import {
  type Bridge,
  CREDENTIALS_SECRET,
  OPERATOR_NAMESPACE,
  startBridge,
  synced,
  until,
} from "./harness.ts";
import { ALL_SCOPES } from "../world/quay/mod.ts";

async function event(b: Bridge, objectName: string, reason: string) {
  return await until(`Event ${reason} on ${objectName}`, async () => {
    const list = await b.kube.ok("GET", "/api/v1/events");
    return list.items.find((e: { involvedObject: { name: string }; reason: string }) =>
      e.involvedObject.name === objectName && e.reason === reason
    );
  }, 15_000);
}

Deno.test("a rotated token in the credentials Secret is used by the next call", async () => {
  const b = await startBridge();
  try {
    await b.createProject("before");
    await synced(b, "before");
    const fresh = b.quayWorld.createToken({ user: "quayadmin", superuser: true, scopes: ALL_SCOPES });
    await b.kube.ok(
      "PATCH",
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${CREDENTIALS_SECRET}`,
      { stringData: { token: fresh } },
      "application/merge-patch+json",
    );
    // The old token stops working at once, as when an admin revokes it after rotating.
    b.quayWorld.revokeToken(b.quayWorld.adminToken);
    await b.createProject("after");
    await synced(b, "after");
  } finally {
    await b.close();
  }
});

Deno.test("a changed clusterID is reported and the old organizations are kept", async () => {
  const b = await startBridge();
  try {
    await b.createProject("moving");
    await synced(b, "moving");
    await b.applyIntegration("quay", b.integrationSpec({ clusterID: "cluster2" }));
    await event(b, "quay", "OrganizationPrefixChanged");
    await synced(b, "moving", { clusterId: "cluster2" });
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_moving")).status, 200);
    assert.equal((await b.quay.call("GET", "/api/v1/organization/cluster2_moving")).status, 200);
  } finally {
    await b.close();
  }
});

Deno.test("namespaceSelector picks namespaces by label; an unselected namespace is let go, its organization kept", async () => {
  const b = await startBridge({
    integrationSpec: { namespaceSelector: { matchLabels: { "quay.example.com/team": "a" } } },
  });
  try {
    await b.createProject("team-a", { "quay.example.com/team": "a" });
    await b.createProject("team-b", { "quay.example.com/team": "b" });
    await synced(b, "team-a");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_team-b")).status, 404);

    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/team-a",
      { metadata: { labels: { "quay.example.com/team": "c" } } },
      "application/merge-patch+json",
    );
    await until("finalizer released", async () => {
      const ns = await b.kube.ok("GET", "/api/v1/namespaces/team-a");
      return !(ns.metadata.finalizers ?? []).includes("quay.redhat.com/quayintegrations");
    });
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_team-a")).status, 200);
  } finally {
    await b.close();
  }
});

Deno.test("a flaky Quay (500s and 429 with Retry-After) delays but does not break provisioning", async () => {
  const b = await startBridge();
  try {
    await b.createProject("warm");
    await synced(b, "warm");
    b.quayWorld.faults.errorRate({ rate: 0.3 });
    b.quayWorld.faults.throttleNext(3, { retryAfterSeconds: 1 });
    const names = ["flaky-1", "flaky-2", "flaky-3", "flaky-4"];
    for (const ns of names) await b.createProject(ns);
    for (const ns of names) await synced(b, ns, { timeoutMs: 60_000 });
    const injected = b.quayWorld.faults.injected();
    assert.ok((injected.error ?? 0) > 0, JSON.stringify(injected));
    assert.equal(injected.throttle, 3);
    await b.quayWorld.faults.clear();
    for (const ns of names) {
      const robots = await b.quay.ok("GET", `/api/v1/organization/openshift_${ns}/robots`);
      assert.equal(robots.robots.length, 3);
    }
  } finally {
    await b.close();
  }
});
