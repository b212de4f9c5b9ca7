/**
 * SIGTERM ends `quay-bridge run` within 2 s whatever it is doing — after a bulk deletion, or with
 * reconciles stuck on a Quay that does not answer — and the Lease is released for the standby.
 */
import assert from "node:assert/strict";
import { type Bridge, OPERATOR_NAMESPACE, startBridge, synced, until } from "../integration/harness.ts";
import { freePort, type OperatorProcess, startOperatorProcess } from "../cli/process.ts";
import { figure, size } from "./suite.ts";

const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/quay-bridge-leader`;
/** How many namespaces the bulk deletion deletes (`RELIABILITY_SIZE=large` runs 300). */
const BULK = size(100, 300);

function start(b: Bridge): OperatorProcess {
  // The README's line: webhook self-managed, ops server on, leader election on.
  return startOperatorProcess([
    "--kubeconfig",
    b.kubeconfig,
    "--namespace",
    OPERATOR_NAMESPACE,
    "--pod-name",
    "terminated",
    "--ops-port",
    String(freePort()),
    "--ops-host",
    "127.0.0.1",
    "--webhook-port",
    String(freePort()),
    "--webhook-host",
    "127.0.0.1",
  ], { NO_PROXY: "localhost,127.0.0.1" });
}

/** Sends SIGTERM and returns the seconds until exit (Infinity after 10 s). */
async function terminate(p: OperatorProcess): Promise<{ seconds: number; code?: number }> {
  const sent = performance.now();
  p.kill("SIGTERM");
  const status = await Promise.race([
    p.status,
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000)),
  ]);
  return { seconds: status ? (performance.now() - sent) / 1000 : Infinity, code: status?.code };
}

async function leaseReleased(b: Bridge): Promise<boolean> {
  const r = await b.kube.call("GET", LEASE);
  return r.status === 200 && r.body.spec.holderIdentity === "";
}

Deno.test(`SIGTERM exits within 2 s after a bulk deletion of ${BULK} namespaces`, async () => {
  const b = await startBridge({ start: false });
  const p = start(b);
  try {
    const names = Array.from({ length: BULK }, (_, i) => `bulk-${i}`);
    for (const ns of names) await b.createProject(ns);
    for (const ns of names) await synced(b, ns, { timeoutMs: 120_000 });
    for (const ns of names) await b.kube.ok("DELETE", `/api/v1/namespaces/${ns}`);
    await until("every namespace gone", async () => {
      for (const ns of names) {
        if ((await b.kube.call("GET", `/api/v1/namespaces/${ns}`)).status !== 404) return false;
      }
      return true;
    }, 120_000);
    const { seconds, code } = await terminate(p);
    assert.ok(seconds <= 2, `exited ${seconds} s after SIGTERM`);
    assert.equal(code, 0);
    assert.ok(await leaseReleased(b), "the Lease is released");
    figure(
      `SIGTERM after deleting ${BULK} namespaces`,
      1,
      1,
      `exit in ${seconds.toFixed(2)} s, Lease released`,
    );
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await b.close();
  }
});

Deno.test("SIGTERM exits within 2 s while reconciles wait on a Quay that does not answer", async () => {
  const b = await startBridge({ start: false });
  const p = start(b);
  try {
    await b.createProject("before");
    await synced(b, "before");
    await b.quayWorld.faults.outage({ mode: "hang" });
    for (let i = 0; i < 10; i++) await b.createProject(`stuck-${i}`);
    // Let the reconciles reach Quay and hang there.
    await new Promise((r) => setTimeout(r, 1_000));
    const { seconds, code } = await terminate(p);
    assert.ok(seconds <= 2, `exited ${seconds} s after SIGTERM`);
    assert.equal(code, 0);
    assert.ok(await leaseReleased(b), "the Lease is released");
    figure("SIGTERM with reconciles stuck on Quay", 1, 1, `exit in ${seconds.toFixed(2)} s, Lease released`);
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await b.quayWorld.faults.restore();
    await b.close();
  }
});

Deno.test("SIGTERM exits within 2 s while the caches cannot sync (QuayIntegration CRD missing)", async () => {
  const b = await startBridge({ start: false, integration: false });
  const crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/quayintegrations.quay.redhat.com";
  await b.kube.ok("DELETE", crd);
  await until("the QuayIntegration API to go", async () => {
    return (await b.kube.call("GET", "/apis/quay.redhat.com/v1/quayintegrations")).status === 404;
  }, 10_000);
  const p = start(b);
  try {
    // Start-up waits for the first list of every cache; this one keeps failing with 404.
    await until(
      "a failing watch",
      () => Promise.resolve(p.lines.some((l) => l.includes("watch failed"))),
      30_000,
    );
    const { seconds, code } = await terminate(p);
    assert.ok(seconds <= 2, `exited ${seconds} s after SIGTERM`);
    assert.equal(code, 0);
    figure("SIGTERM while a cache cannot list (404)", 1, 1, `exit in ${seconds.toFixed(2)} s`);
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await b.close();
  }
});

Deno.test("Operator.stop aborts the Quay calls of reconciles still waiting when the grace ends", async () => {
  // In process, with Quay's request timeout far beyond the grace: only the abort ends the calls.
  const b = await startBridge({ flags: ["--quay-timeout", "20s"] });
  try {
    await b.createProject("before");
    await synced(b, "before");
    await b.quayWorld.faults.outage({ mode: "hang" });
    for (let i = 0; i < 3; i++) await b.createProject(`hanging-${i}`);
    await new Promise((r) => setTimeout(r, 1_000));
    const running = b.running;
    assert.ok(running, "the operator runs");
    const started = performance.now();
    await running.operator.stop(200);
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds <= 1, `stop took ${seconds} s with a 0.2 s grace`);
    figure("Operator.stop with reconciles hanging on Quay", 1, 1, `stopped in ${seconds.toFixed(2)} s`);
  } finally {
    await b.quayWorld.faults.restore();
    await b.close();
  }
});
