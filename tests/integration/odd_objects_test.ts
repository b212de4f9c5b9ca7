/**
 * Odd objects in the cluster never crash the operator or stall other namespaces: a Build that looks
 * managed but carries a malformed destination, a Secret with our name holding garbage, service
 * accounts with broken secret lists. Each gets an Event or is repaired; the next namespace syncs.
 */
import assert from "node:assert/strict";
import { startBridge, synced, until } from "./harness.ts";

Deno.test("odd objects get an Event or a repair, never a crash, and other namespaces keep syncing", async () => {
  const b = await startBridge();
  try {
    // Before the operator reaches the namespace: a non-dockerconfig Secret squats on a robot
    // Secret's name, and a service account carries a broken secrets list.
    await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "odd" } });
    await b.kube.ok("POST", "/api/v1/namespaces/odd/secrets", {
      metadata: { name: "default-quay-openshift" },
      type: "Opaque",
      data: { junk: btoa("not a docker config") },
    });
    await b.kube.ok("POST", "/api/v1/namespaces/odd/serviceaccounts", {
      metadata: { name: "builder" },
      secrets: [{}, { name: "" }],
      imagePullSecrets: [{}],
    });
    for (const sa of ["default", "deployer"]) {
      await b.kube.ok("POST", "/api/v1/namespaces/odd/serviceaccounts", { metadata: { name: sa } });
    }
    await b.kube.ok(
      "PATCH",
      "/api/v1/namespaces/odd",
      { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c9,c8" } } },
      "application/merge-patch+json",
    );
    // A completed Build that claims to be ours, with a destination that means nothing.
    await b.kube.ok("POST", "/apis/build.openshift.io/v1/namespaces/odd/builds", {
      metadata: {
        name: "weird-1",
        annotations: {
          "quay-registry-operator.quay.redhat.com/quay-registry-operator-managed": "true",
          "quay-registry-operator.quay.redhat.com/destination-imagestream": "no-slash-no-colon",
        },
      },
      spec: {
        strategy: { type: "Docker", dockerStrategy: {} },
        output: { to: { kind: "DockerImage", name: "quay.example.com/x/y:z" } },
      },
    });
    const weird = await b.kube.ok("GET", "/apis/build.openshift.io/v1/namespaces/odd/builds/weird-1");
    await b.kube.ok("PUT", "/apis/build.openshift.io/v1/namespaces/odd/builds/weird-1/status", {
      ...weird,
      status: { phase: "Complete" },
    });

    // Meanwhile a normal project syncs.
    await b.createProject("normal");
    await synced(b, "normal");

    // The builder's broken list is repaired with our links; the squatting Secret is reported.
    await until("builder linked", async () => {
      const sa = await b.kube.ok("GET", "/api/v1/namespaces/odd/serviceaccounts/builder");
      return (sa.imagePullSecrets ?? []).some((s: { name?: string }) => s.name === "builder-quay-openshift");
    }).catch((error) => {
      const lines = b.logs.filter((l) => l.level !== "debug").slice(-15).map((l) => JSON.stringify(l));
      throw new Error(`${error.message}\n${lines.join("\n")}`);
    });
    const events = await until("Events for the odd objects", async () => {
      const list = await b.kube.ok("GET", "/api/v1/events");
      const reasons = new Map<string, string>();
      for (const e of list.items) reasons.set(`${e.involvedObject.kind}/${e.involvedObject.name}`, e.reason);
      return reasons.has("Build/weird-1") ? reasons : undefined;
    });
    assert.ok(events.get("Build/weird-1"), "an Event on the Build with the malformed destination");
    await until("an Event about the squatting Secret", async () => {
      const list = await b.kube.ok("GET", "/api/v1/events");
      return list.items.some((e: { involvedObject: { name: string }; reason: string; message: string }) =>
        e.involvedObject.name === "odd" && /default-quay-openshift/.test(e.message)
      );
    });
    const running = await Promise.race([
      b.running?.exited,
      new Promise((r) => setTimeout(() => r("running"), 50)),
    ]);
    assert.equal(running, "running");
  } finally {
    await b.close();
  }
});
