/**
 * The supervised cache against the world: a relist asked for while a list is running is not lost
 * (it used to wait for the next watch timeout, minutes later).
 */
import assert from "node:assert/strict";
import { KubeClient, loadKubeConnection } from "../../src/kube/client.ts";
import { Reflector } from "../../src/kube/reflector.ts";
import { SERVICE_ACCOUNTS } from "../../src/kube/resources.ts";
import { silentLogger } from "../../src/log.ts";
import { startKubeWorld } from "../world/kube/mod.ts";
import { until } from "./harness.ts";

Deno.test("a relist requested during a list takes effect at once", async () => {
  const world = await startKubeWorld();
  const dir = await Deno.makeTempDir();
  const kube = new KubeClient(
    await loadKubeConnection({ kubeconfig: await world.writeKubeconfig(`${dir}/k`) }),
  );
  const abort = new AbortController();
  try {
    const http = Deno.createHttpClient({ caCerts: [world.caPem] });
    await fetch(`${world.url}/api/v1/namespaces/default/serviceaccounts`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ metadata: { name: "wanted-later" } }),
      client: http,
    }).then((r) => r.body?.cancel());
    http.close();

    const wanted = new Set<string>();
    let flipped = false;
    const reflector: Reflector = new Reflector(kube, SERVICE_ACCOUNTS, {
      logger: silentLogger,
      namespace: "default",
      watchTimeoutSeconds: 300,
      project: (o) => {
        // The criteria change while the first list is being read, as when a QuayIntegration
        // naming a new service account arrives during a list.
        if (!flipped) {
          flipped = true;
          wanted.add("wanted-later");
          reflector.relist();
          return undefined;
        }
        return wanted.has(o.metadata?.name ?? "") ? o : undefined;
      },
    });
    const running = reflector.run(abort.signal);
    await reflector.ready;
    await until("the relist to pick up the object", () => reflector.get("default/wanted-later"), 3_000);
    assert.ok(reflector.get("default/wanted-later"));
    abort.abort();
    await running;
  } finally {
    abort.abort();
    kube.close();
    await world.close();
    await Deno.remove(dir, { recursive: true });
  }
});
