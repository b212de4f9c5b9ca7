/**
 * Kubernetes API faults between the operator and the API server: watches cut again and again,
 * watches resumed from a compacted resourceVersion (410 Gone), conflicting writes to the objects
 * it manages (409), and the API server down. After each, the operator reaches the exact state.
 * Leader loss with two replicas is in `leader_test.ts`.
 */
import assert from "node:assert/strict";
import { startBridge, until } from "../integration/harness.ts";
import { exactState, figure, size } from "./suite.ts";
import { kubeconfigVia, startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

const DOWN_MS = size(5_000, 30_000);
const CUTS = size(5, 50);

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

Deno.test("API faults: watch cuts, 410, 409 and the API down all end in the exact state", async () => {
  const b = await startBridge({ start: false });
  const proxy: TcpProxy = startTcpProxy(b.kubeWorld.url);
  const live: string[] = [];
  const gone: string[] = [];
  let tried = 0;
  let held = 0;
  const project = async (ns: string) => {
    await b.createProject(ns);
    live.push(ns);
  };
  const remove = async () => {
    const ns = live.shift();
    if (!ns) return;
    await b.kube.ok("DELETE", `/api/v1/namespaces/${ns}`);
    gone.push(ns);
  };
  try {
    await b.startOperator(["--kubeconfig", await kubeconfigVia(b.kubeconfig, proxy.url)]);
    await project("base");
    await exactState(b, live, gone);

    // Watch cuts: every connection dropped, repeatedly, while projects come and go.
    tried++;
    for (let i = 0; i < CUTS; i++) {
      if (i % 2 === 0) await project(`cut-${i}`);
      proxy.set("refuse");
      await pause(100);
      proxy.set("open");
      await pause(300);
    }
    await remove();
    await exactState(b, live, gone);
    held++;

    // 410: history compacted while the watches are down, so they resume from a gone version.
    tried++;
    proxy.set("refuse");
    await project("compacted-a");
    await remove();
    b.kubeWorld.compact();
    await pause(300);
    proxy.set("open");
    await project("compacted-b");
    await exactState(b, live, gone);
    held++;

    // 409: a managed Secret rewritten behind the operator's back, several times in a row.
    tried++;
    const ns = live[live.length - 1] ?? "base";
    const path = `/api/v1/namespaces/${ns}/secrets/builder-quay-openshift`;
    const original = (await b.kube.ok("GET", path)).data[".dockerconfigjson"];
    for (let i = 0; i < 5; i++) {
      const current = await b.kube.ok("GET", path);
      await b.kube.call("PUT", path, {
        ...current,
        data: {
          ".dockerconfigjson": btoa(JSON.stringify({ auths: { tampered: { auth: btoa(`x:${i}`) } } })),
        },
      });
    }
    await until("the robot Secret restored", async () => {
      return (await b.kube.ok("GET", path)).data[".dockerconfigjson"] === original;
    }, 30_000);
    await exactState(b, live, gone);
    held++;

    // The API server unreachable for a while; projects created and deleted meanwhile.
    tried++;
    proxy.set("refuse");
    await project("while-down-a");
    await remove();
    await pause(DOWN_MS / 2);
    await project("while-down-b");
    await pause(DOWN_MS / 2);
    proxy.set("open");
    await exactState(b, live, gone);
    held++;

    assert.equal(await Promise.race([b.running?.exited, pause(10).then(() => "running")]), "running");
    figure(
      "API faults (watch cuts, 410, 409, API down)",
      tried,
      held,
      `${CUTS} cuts; down ${DOWN_MS / 1000} s; ${live.length} live, ${gone.length} deleted exact`,
    );
  } finally {
    await b.close();
    await proxy.close();
  }
});
