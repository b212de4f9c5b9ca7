/**
 * Drift repair, the legacy CR, deletion policies and a restart mid-sync, against the test world.
 */
import assert from "node:assert/strict";
import { type Bridge, OPERATOR_NAMESPACE, startBridge, synced, until } from "./harness.ts";

const SAS = ["builder", "default", "deployer"];

async function robots(b: Bridge, org: string): Promise<{ name: string; token: string }[]> {
  return (await b.quay.ok("GET", `/api/v1/organization/${org}/robots?token=true`)).robots;
}

async function prototypes(b: Bridge, org: string): Promise<{ id: string; delegate: { name: string } }[]> {
  return (await b.quay.ok("GET", `/api/v1/organization/${org}/prototypes`)).prototypes;
}

function tokenOf(secret: { data: Record<string, string> }): string {
  const config = JSON.parse(atob(secret.data[".dockerconfigjson"] ?? ""));
  const auth = Object.values(config.auths as Record<string, { auth: string }>)[0];
  return atob(auth?.auth ?? "").split(":").slice(1).join(":");
}

Deno.test("drift in Quay and in the cluster is repaired at the next resync", async () => {
  const b = await startBridge({ flags: ["--resync", "1s", "--audit-interval", "0"] });
  try {
    await b.createProject("drift");
    await synced(b, "drift");
    const org = "openshift_drift";
    // Quay: a robot and a prototype deleted by hand.
    await b.quay.ok("DELETE", `/api/v1/organization/${org}/robots/deployer`);
    const builderPrototype = (await prototypes(b, org)).find((p) => p.delegate.name === `${org}+builder`);
    assert.ok(builderPrototype);
    await b.quay.ok("DELETE", `/api/v1/organization/${org}/prototypes/${builderPrototype.id}`);
    // Cluster: a Secret deleted and a ServiceAccount's links removed.
    await b.kube.ok("DELETE", "/api/v1/namespaces/drift/secrets/default-quay-openshift");
    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/drift/serviceaccounts/builder",
      { secrets: [], imagePullSecrets: [] },
      "application/merge-patch+json",
    );

    await until("robots and prototypes repaired", async () => {
      const names = (await robots(b, org)).map((r) => r.name).sort();
      const delegates = (await prototypes(b, org)).map((p) => p.delegate.name).sort();
      return names.length === 3 && delegates.length === 3 && delegates.includes(`${org}+builder`);
    }, 15_000);
    await synced(b, "drift");
    // The recreated deployer robot has a new token: its Secret carries it.
    const deployer = (await robots(b, org)).find((r) => r.name === `${org}+deployer`);
    await until("deployer secret has the new token", async () => {
      const secret = await b.kube.ok("GET", "/api/v1/namespaces/drift/secrets/deployer-quay-openshift");
      return tokenOf(secret) === deployer?.token;
    });
    const builder = await b.kube.ok("GET", "/api/v1/namespaces/drift/serviceaccounts/builder");
    assert.ok(builder.secrets.some((s: { name: string }) => s.name === "builder-quay-openshift"));
  } finally {
    await b.close();
  }
});

Deno.test("the legacy redhatcop.redhat.io/v1alpha1 CR is read, and the legacy finalizer is replaced and released", async () => {
  const b = await startBridge({ integration: false });
  try {
    await b.kube.ok("POST", "/apis/redhatcop.redhat.io/v1alpha1/quayintegrations", {
      apiVersion: "redhatcop.redhat.io/v1alpha1",
      kind: "QuayIntegration",
      metadata: { name: "legacy" },
      spec: {
        clusterID: "legacy",
        credentialsSecretName: `${OPERATOR_NAMESPACE}/quay-integration`,
        quayHostname: b.quayWorld.url,
        insecureRegistry: true,
        whitelistNamespaces: ["old-project"],
      },
    });
    // A namespace the predecessor managed still carries its finalizer.
    await b.kube.ok("POST", "/api/v1/namespaces", {
      metadata: { name: "old-project", finalizers: ["redhatcop.redhat.io/quayintegrations"] },
    });
    for (const sa of SAS) {
      await b.kube.ok("POST", "/api/v1/namespaces/old-project/serviceaccounts", { metadata: { name: sa } });
    }
    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/old-project",
      { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c3,c4" } } },
      "application/merge-patch+json",
    );
    await synced(b, "old-project", { clusterId: "legacy" }).catch((error) => {
      throw new Error(`${error.message}\n${b.logs.slice(-30).map((l) => JSON.stringify(l)).join("\n")}`);
    });
    assert.equal(
      (await b.quay.ok("GET", "/api/v1/organization/legacy_old-project")).name,
      "legacy_old-project",
    );
    const ns = await b.kube.ok("GET", "/api/v1/namespaces/old-project");
    assert.deepEqual(ns.metadata.finalizers, ["quay.redhat.com/quayintegrations"]);
    const status = await until("legacy CR status", async () => {
      const cr = await b.kube.ok("GET", "/apis/redhatcop.redhat.io/v1alpha1/quayintegrations/legacy");
      const ready = (cr.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
      return ready?.status === "True" ? cr.status : undefined;
    });
    assert.ok(status);

    await b.kube.ok("DELETE", "/api/v1/namespaces/old-project");
    await until(
      "namespace gone",
      async () => (await b.kube.call("GET", "/api/v1/namespaces/old-project")).status === 404,
    );
    assert.equal((await b.quay.call("GET", "/api/v1/organization/legacy_old-project")).status, 404);
  } finally {
    await b.close();
  }
});

Deno.test("policies: Retain keeps the organization, repositoryDeletionPolicy decides an ImageStream's repository", async () => {
  const b = await startBridge({
    integrationSpec: { organizationDeletionPolicy: "Retain", repositoryDeletionPolicy: "Delete" },
  });
  try {
    await b.createProject("keep");
    for (const is of ["one", "two"]) {
      await b.kube.ok("POST", "/apis/image.openshift.io/v1/namespaces/keep/imagestreams", {
        metadata: { name: is },
      });
    }
    await synced(b, "keep");
    await until("two repositories", async () => {
      const list = await b.quay.ok("GET", "/api/v1/repository?namespace=openshift_keep");
      return list.repositories.length === 2;
    });
    // A repository made by someone else in the org is never deleted by the Delete policy.
    await b.quay.ok("POST", "/api/v1/repository", {
      namespace: "openshift_keep",
      repository: "handmade",
      visibility: "private",
      description: "made by hand",
    });
    await b.kube.ok("DELETE", "/apis/image.openshift.io/v1/namespaces/keep/imagestreams/one");
    await until("repository one deleted", async () => {
      return (await b.quay.call("GET", "/api/v1/repository/openshift_keep/one")).status === 404;
    });
    assert.equal((await b.quay.call("GET", "/api/v1/repository/openshift_keep/two")).status, 200);

    await b.kube.ok("DELETE", "/api/v1/namespaces/keep");
    await until(
      "namespace gone",
      async () => (await b.kube.call("GET", "/api/v1/namespaces/keep")).status === 404,
    );
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_keep")).status, 200);
    assert.equal((await b.quay.call("GET", "/api/v1/repository/openshift_keep/handmade")).status, 200);
  } finally {
    await b.close();
  }
});

Deno.test("the default repositoryDeletionPolicy Retain keeps the repository of a deleted ImageStream", async () => {
  const b = await startBridge();
  try {
    await b.createProject("retain");
    await b.kube.ok("POST", "/apis/image.openshift.io/v1/namespaces/retain/imagestreams", {
      metadata: { name: "app" },
    });
    await synced(b, "retain");
    await until(
      "repository",
      async () => (await b.quay.call("GET", "/api/v1/repository/openshift_retain/app")).status === 200,
    );
    await b.kube.ok("DELETE", "/apis/image.openshift.io/v1/namespaces/retain/imagestreams/app");
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal((await b.quay.call("GET", "/api/v1/repository/openshift_retain/app")).status, 200);
  } finally {
    await b.close();
  }
});

Deno.test("an operator restarted mid-sync finishes every namespace without duplicates", async () => {
  const b = await startBridge({ quay: {} });
  try {
    const names = Array.from({ length: 12 }, (_, i) => `restart-${i}`);
    // Slow Quay down so the first run is stopped with work in flight.
    b.quayWorld.faults.latency({ ms: 40 });
    for (const ns of names) await b.createProject(ns);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await b.running?.stop(), 0);
    await b.quayWorld.faults.clear();
    await b.startOperator();
    for (const ns of names) await synced(b, ns);
    for (const ns of names) {
      const org = `openshift_${ns}`;
      assert.equal((await robots(b, org)).length, 3, `${org} robots`);
      const delegates = (await prototypes(b, org)).map((p) => p.delegate.name).sort();
      assert.deepEqual(delegates, SAS.map((sa) => `${org}+${sa}`), `${org} prototypes`);
      const secrets = await b.kube.ok("GET", `/api/v1/namespaces/${ns}/secrets`);
      assert.equal(secrets.items.length, 3, `${ns} secrets`);
      for (const sa of SAS) {
        const account = await b.kube.ok("GET", `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`);
        const pulls = account.imagePullSecrets.map((s: { name: string }) => s.name);
        assert.equal(pulls.filter((n: string) => n === `${sa}-quay-openshift`).length, 1);
      }
      const nsObject = await b.kube.ok("GET", `/api/v1/namespaces/${ns}`);
      assert.deepEqual(nsObject.metadata.finalizers, ["quay.redhat.com/quayintegrations"]);
    }
  } finally {
    await b.close();
  }
});

Deno.test("deleting the QuayIntegration releases its namespaces' finalizers, so no namespace hangs in Terminating", async () => {
  const b = await startBridge();
  try {
    await b.createProject("orphan");
    await synced(b, "orphan");
    await b.kube.ok("DELETE", "/apis/quay.redhat.com/v1/quayintegrations/quay");
    await until("finalizer released", async () => {
      const ns = await b.kube.ok("GET", "/api/v1/namespaces/orphan");
      return !(ns.metadata.finalizers ?? []).includes("quay.redhat.com/quayintegrations");
    });
    await b.kube.ok("DELETE", "/api/v1/namespaces/orphan");
    await until(
      "namespace gone",
      async () => (await b.kube.call("GET", "/api/v1/namespaces/orphan")).status === 404,
    );
    // Without an integration nothing is deleted in Quay: the organization is kept for the admin.
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_orphan")).status, 200);
  } finally {
    await b.close();
  }
});
