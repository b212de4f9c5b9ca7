/**
 * `quay-bridge run --kubeconfig …` outside a cluster takes the operator's namespace from the
 * kubeconfig context, as kubectl does; when the namespace it would use does not exist it stops at
 * once with a message naming `--namespace`, instead of logging failed Lease updates forever.
 */
import assert from "node:assert/strict";
import { startBridge, until } from "../integration/harness.ts";
import { startOperatorProcess } from "../cli/process.ts";
import { figure } from "./suite.ts";

const env = { NO_PROXY: "localhost,127.0.0.1" };

Deno.test("run takes the operator's namespace from the kubeconfig context", async () => {
  const b = await startBridge({ start: false });
  const dir = await Deno.makeTempDir();
  const kubeconfig = await b.kubeWorld.writeKubeconfig(`${dir}/kubeconfig`, { namespace: "team-ops" });
  await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "team-ops" } });
  const p = startOperatorProcess(
    ["--kubeconfig", kubeconfig, "--webhook-mode", "off", "--ops-port", "0"],
    env,
  );
  try {
    await until("the Lease in team-ops", async () => {
      const r = await b.kube.call(
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/team-ops/leases/quay-bridge-leader",
      );
      return r.status === 200;
    }, 20_000);
    assert.ok(!p.lines.some((l) => l.includes("lease update failed")), p.lines.join("\n"));
    figure("local run: namespace from the kubeconfig context", 1, 1);
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run stops at once, naming --namespace, when the operator's namespace does not exist", async () => {
  const b = await startBridge({ start: false });
  const dir = await Deno.makeTempDir();
  // The README's line on a cluster without the quay-bridge namespace.
  const kubeconfig = await b.kubeWorld.writeKubeconfig(`${dir}/kubeconfig`);
  await b.kube.ok("DELETE", "/api/v1/namespaces/quay-bridge");
  await until(
    "quay-bridge gone",
    async () => (await b.kube.call("GET", "/api/v1/namespaces/quay-bridge")).status === 404,
  );
  const p = startOperatorProcess(
    ["--kubeconfig", kubeconfig, "--webhook-mode", "off", "--ops-port", "0"],
    env,
  );
  try {
    const status = await Promise.race([
      p.status,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000)),
    ]);
    assert.ok(status, `still running: ${p.lines.slice(-3).join("\n")}`);
    assert.notEqual(status.code, 0);
    const text = p.lines.join("\n");
    assert.match(text, /namespace \\"quay-bridge\\" not found/);
    assert.match(text, /--namespace/);
    figure(
      "local run: operator namespace missing",
      1,
      1,
      `exit code ${status.code}, message names --namespace`,
    );
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});
