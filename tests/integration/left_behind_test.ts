/**
 * Left-behind organizations are collected: an organization Quay would not delete within the
 * deletion budget is listed in the QuayIntegration's status (Degraded, the gauge), survives a
 * restart there, is retried with backoff, and deleted once Quay allows it — with an Event. An
 * organization whose namespace comes back selected is kept and taken off the list instead.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";

const DELETE_ORG = "DELETE /api/v1/organization/{org}";

interface Entry {
  organization: string;
  namespace: string;
  attempts: number;
  lastError: string;
}

async function status(b: Bridge) {
  return (await b.kube.ok("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay")).status ?? {};
}

async function listed(b: Bridge): Promise<Entry[]> {
  return (await status(b)).leftBehindOrganizations ?? [];
}

function gauge(b: Bridge): string | undefined {
  return b.running?.metrics.render().split("\n")
    .find((l) => l.startsWith('quay_bridge_organizations_left_behind{integration="quay"}'))?.split(" ").at(
      -1,
    );
}

async function deleteAndWaitGone(b: Bridge, ns: string): Promise<void> {
  await b.kube.ok("DELETE", `/api/v1/namespaces/${ns}`);
  await until(
    `${ns} released`,
    async () => (await b.kube.call("GET", `/api/v1/namespaces/${ns}`)).status === 404,
    30_000,
  );
}

Deno.test("a left-behind organization is listed, survives a restart, is retried, and deleted once Quay allows it", async () => {
  const b = await startBridge({ flags: ["--deletion-budget", "2s"] });
  try {
    await b.createProject("stuck");
    await b.createProject("back");
    await synced(b, "stuck");
    await synced(b, "back");
    b.quayWorld.faults.failRoute(DELETE_ORG, { status: 500 });
    await deleteAndWaitGone(b, "stuck");
    await deleteAndWaitGone(b, "back");

    const both = await until("both listed", async () => {
      const entries = await listed(b);
      return entries.length === 2 ? entries : undefined;
    });
    assert.deepEqual(both.map((e) => [e.organization, e.namespace]).sort(), [
      ["openshift_back", "back"],
      ["openshift_stuck", "stuck"],
    ]);
    await until("Degraded names them", async () => {
      const degraded = ((await status(b)).conditions ?? []).find((c: { type: string }) =>
        c.type === "Degraded"
      );
      return degraded?.status === "True" && /openshift_stuck/.test(degraded.message) &&
        /left behind/.test(degraded.message);
    });
    await until("gauge 2", () => gauge(b) === "2");

    // The list is in the QuayIntegration, not in the process.
    assert.equal(await b.running?.stop(), 0);
    await b.startOperator();

    // "back" comes back as a selected project: its organization is taken back, not deleted.
    await b.createProject("back");
    await synced(b, "back");

    // The collector retries while Quay still refuses.
    await until("a failed attempt recorded", async () => {
      const stuck = (await listed(b)).find((e) => e.organization === "openshift_stuck");
      return stuck !== undefined && stuck.attempts >= 1 && /500/.test(stuck.lastError);
    }, 20_000);

    b.quayWorld.faults.failRoute(DELETE_ORG, null);
    await until(
      "openshift_stuck deleted",
      async () => (await b.quay.call("GET", "/api/v1/organization/openshift_stuck")).status === 404,
      30_000,
    );
    await until("the list is empty", async () => (await listed(b)).length === 0, 10_000);
    await until("gauge 0", () => gauge(b) === "0", 10_000);
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_back")).status, 200, "kept");
    // Events are recorded asynchronously (batched by the recorder): wait for both, do not sample once.
    await until("OrganizationCollected and OrganizationReclaimed Events", async () => {
      const events = (await b.kube.ok("GET", "/api/v1/events")).items as {
        reason: string;
        message: string;
      }[];
      return events.some((e) => e.reason === "OrganizationCollected" && /openshift_stuck/.test(e.message)) &&
        events.some((e) => e.reason === "OrganizationReclaimed" && /openshift_back/.test(e.message));
    }, 10_000);
    await until("Degraded no longer names them", async () => {
      const conditions = (await status(b)).conditions ?? [];
      const degraded = conditions.find((c: { type: string }) => c.type === "Degraded");
      return degraded !== undefined && !/left behind/.test(degraded.message);
    }, 10_000);
  } finally {
    await b.quayWorld.faults.clear();
    await b.close();
  }
});
