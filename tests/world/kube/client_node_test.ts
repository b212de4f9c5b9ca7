/**
 * `@kubernetes/client-node` 1.4 against the world: typed calls, errors as ApiExceptions, and an
 * informer that relists after a 410 and keeps its cache in step.
 */
import "../../cluster/quiet_node_deprecations.ts";
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { eventually, withWorld } from "./test_helpers.ts";

Deno.test("client-node calls work and its informer relists after the world compacts", async () => {
  await withWorld({ bookmarkIntervalMs: 200 }, async ({ world, request }) => {
    const dir = await Deno.makeTempDir({ prefix: "kube-world-client-node-" });
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(await world.writeKubeconfig(`${dir}/kubeconfig`));
      const core = kc.makeApiClient(k8s.CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: "informed" } } });
      const missing = await core.readNamespace({ name: "nowhere" }).catch((e) => e);
      assert.ok(missing instanceof k8s.ApiException);
      assert.equal(missing.code, 404);
      assert.equal(JSON.parse(missing.body).message, 'namespaces "nowhere" not found');
      const leases = kc.makeApiClient(k8s.CoordinationV1Api);
      const lease = await leases.createNamespacedLease({
        namespace: "informed",
        body: {
          metadata: { name: "leader" },
          spec: { holderIdentity: "me", renewTime: new k8s.V1MicroTime() },
        },
      });
      assert.equal(lease.spec?.holderIdentity, "me");

      const path = "/api/v1/namespaces/informed/configmaps";
      const informer = k8s.makeInformer(
        kc,
        `${path}?timeoutSeconds=1`,
        () => core.listNamespacedConfigMap({ namespace: "informed" }),
      );
      const added: string[] = [];
      let stopping = false;
      informer.on("add", (cm: k8s.V1ConfigMap) => added.push(cm.metadata?.name ?? ""));
      informer.on("error", () => {
        if (!stopping) setTimeout(() => !stopping && informer.start(), 50);
      });
      await core.createNamespacedConfigMap({ namespace: "informed", body: { metadata: { name: "before" } } });
      await informer.start();
      try {
        await core.createNamespacedConfigMap({
          namespace: "informed",
          body: { metadata: { name: "during" } },
        });
        await eventually(() => added.includes("during"), 5000, "the informer to see a create");
        // Writes elsewhere move the resourceVersion past the informer's; once they are compacted, its
        // next watch (after the 1 s timeout) is refused with 410 and it must list again.
        const lists = () => world.requestCounts()["LIST v1/configmaps"] ?? 0;
        const listed = lists();
        await request("POST", "/api/v1/namespaces/informed/secrets", {
          body: { metadata: { name: "elsewhere" } },
        });
        world.compact();
        await eventually(() => lists() > listed, 8000, "the informer to relist after 410");
        await request("POST", `${path}`, { body: { metadata: { name: "after" } } });
        await eventually(
          () => informer.list().some((c) => c.metadata?.name === "after"),
          5000,
          "the informer to catch up",
        );
        assert.deepEqual(informer.list().map((c) => c.metadata?.name).sort(), ["after", "before", "during"]);
      } finally {
        stopping = true;
        await informer.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
