/**
 * A leader cut off from the API server gives up within the renew deadline and exits, and
 * `/healthz` fails from the moment its renewals stall, so a liveness probe restarts a replica
 * that could not exit; a standby takes the Lease over.
 */
import assert from "node:assert/strict";
import { OPERATOR_NAMESPACE, startBridge, until } from "../integration/harness.ts";
import { freePort, replicaFlags, startOperatorProcess } from "../cli/process.ts";
import { kubeconfigVia, startTcpProxy } from "./tcp_proxy.ts";
import { figure } from "./suite.ts";

const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/quay-bridge-leader`;

async function healthz(port: number): Promise<number> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) });
    await r.body?.cancel();
    return r.status;
  } catch {
    return 0;
  }
}

Deno.test("a leader that cannot reach the API server fails /healthz and exits within 15 s", async () => {
  const b = await startBridge({ start: false });
  const proxy = startTcpProxy(b.kubeWorld.url);
  const opsPort = freePort();
  const p = startOperatorProcess([
    "--kubeconfig",
    await kubeconfigVia(b.kubeconfig, proxy.url),
    "--namespace",
    OPERATOR_NAMESPACE,
    "--pod-name",
    "cut-off",
    "--webhook-mode",
    "off",
    "--ops-port",
    String(opsPort),
    "--ops-host",
    "127.0.0.1",
  ], { NO_PROXY: "localhost,127.0.0.1" });
  try {
    await until("leadership", async () => {
      const r = await b.kube.call("GET", LEASE);
      return r.status === 200 && r.body.spec.holderIdentity === "cut-off";
    }, 20_000);
    assert.equal(await healthz(opsPort), 200);

    // The API stops answering (connections accepted, nothing comes back) for 30 s.
    proxy.set("stall");
    const cut = performance.now();
    const statuses: number[] = [];
    let exited: Deno.CommandStatus | undefined;
    p.status.then((s) => exited = s);
    while (!exited && performance.now() - cut < 30_000) {
      statuses.push(await healthz(opsPort));
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = (performance.now() - cut) / 1000;
    assert.ok(
      exited,
      `still running ${after.toFixed(1)} s after the API was cut; /healthz: ${statuses.at(-1)}`,
    );
    assert.ok(after <= 15, `exited ${after.toFixed(1)} s after the cut`);
    assert.notEqual(exited.code, 0);
    assert.ok(
      statuses.some((s) => s === 500),
      `/healthz never failed before the exit: ${[...new Set(statuses)]}`,
    );
    assert.ok(p.lines.some((l) => l.includes("exiting after losing leadership")));
    const failedAt = statuses.findIndex((s) => s === 500);
    figure(
      "leader cut off from the API (stalled)",
      1,
      1,
      `/healthz failed after ~${(failedAt / 10).toFixed(1)} s, exit after ${after.toFixed(1)} s`,
    );
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await proxy.close();
    await b.close();
  }
});

Deno.test("two replicas: the leader cut off exits, the other takes the Lease over", async () => {
  const b = await startBridge({ start: false });
  const proxy = startTcpProxy(b.kubeWorld.url);
  const env = { NO_PROXY: "localhost,127.0.0.1" };
  const common = ["--webhook-mode", "off", "--ops-port", "0"];
  const first = startOperatorProcess([
    ...replicaFlags(await kubeconfigVia(b.kubeconfig, proxy.url), OPERATOR_NAMESPACE, 0),
    ...common,
  ], env);
  let second: ReturnType<typeof startOperatorProcess> | undefined;
  try {
    await until("replica-0 leads", async () => {
      const r = await b.kube.call("GET", LEASE);
      return r.status === 200 && r.body.spec.holderIdentity === "replica-0";
    }, 20_000);
    second = startOperatorProcess([...replicaFlags(b.kubeconfig, OPERATOR_NAMESPACE, 1), ...common], env);
    await until("replica-1 standing by", () => second?.lines.some((l) => l.includes("starting")), 20_000);
    proxy.set("refuse");
    const cut = performance.now();
    const status = await Promise.race([
      first.status,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000)),
    ]);
    assert.ok(status, "replica-0 still running 15 s after its API was cut");
    assert.notEqual(status.code, 0);
    await until("replica-1 leads", async () => {
      const r = await b.kube.call("GET", LEASE);
      return r.status === 200 && r.body.spec.holderIdentity === "replica-1";
    }, 15_000);
    const took = (performance.now() - cut) / 1000;
    assert.ok(took < 20);
    figure("leader loss with two replicas", 1, 1, `the standby led ${took.toFixed(1)} s after the cut`);
  } finally {
    first.kill("SIGKILL");
    second?.kill("SIGKILL");
    await first.status;
    await second?.status;
    await proxy.close();
    await b.close();
  }
});
