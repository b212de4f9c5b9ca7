/**
 * The CLI as an admin uses it: version, help, usage errors, check, plan, and `run` with leader
 * election (two processes, the leader killed, the other takes over, nothing is done twice), its
 * metrics, probes and graceful shutdown.
 */
import assert from "node:assert/strict";
import { OPERATOR_NAMESPACE, startBridge, synced, until } from "../integration/harness.ts";
import { freePort, replicaFlags, runCli, startOperatorProcess } from "./process.ts";
import { VERSION } from "../../src/version.ts";

Deno.test("version, --help and usage errors", async () => {
  const version = await runCli(["version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, new RegExp(`quay-bridge ${VERSION.replaceAll(".", "\\.")}`));
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  for (const command of ["run", "demo", "check", "plan", "version"]) {
    assert.match(help.stdout, new RegExp(command));
  }
  const bad = await runCli(["run", "--resync", "soon"]);
  assert.equal(bad.code, 2);
  // `run` reports it as one JSON log line.
  assert.match(JSON.parse(bad.stderr).error, /--resync: "soon" is not a duration/);
  const unknown = await runCli(["frobnicate"]);
  assert.equal(unknown.code, 2);
});

Deno.test("check names each problem, plan shows what would change without changing it", async () => {
  const b = await startBridge({ start: false });
  try {
    const env = { NO_PROXY: "localhost,127.0.0.1" };
    const ok = await runCli(["check", "--kubeconfig", b.kubeconfig, "--namespace", OPERATOR_NAMESPACE], env);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    await b.createProject("planned");
    b.quayWorld.resetCalls();
    const plan = await runCli(["plan", "--kubeconfig", b.kubeconfig, "-o", "json"], env);
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout);
    const planned = (parsed.namespaces ?? parsed).find((p: { namespace: string }) =>
      p.namespace === "planned"
    );
    assert.ok(planned, plan.stdout);
    assert.ok(planned.quay.some((line: string) => /openshift_planned/.test(line)), JSON.stringify(planned));
    // A dry run only reads.
    for (const route of Object.keys(b.quayWorld.calls())) assert.match(route, /^GET /);
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_planned")).status, 404);

    // A broken credentials Secret is named by check.
    await b.kube.ok(
      "PATCH",
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/quay-integration`,
      { stringData: { token: "revoked" } },
      "application/merge-patch+json",
    );
    const bad = await runCli(["check", "--kubeconfig", b.kubeconfig, "--namespace", OPERATOR_NAMESPACE], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /token|401|credential/i);
  } finally {
    await b.close();
  }
});

Deno.test("two replicas: one leads, the other takes over within the lease when the leader dies, nothing twice", async () => {
  const b = await startBridge({ start: false });
  const ports = [freePort(), freePort()];
  const start = (i: number) =>
    startOperatorProcess([
      ...replicaFlags(b.kubeconfig, OPERATOR_NAMESPACE, i),
      "--webhook-mode",
      "off",
      "--ops-host",
      "127.0.0.1",
      "--ops-port",
      String(ports[i]),
    ], { NO_PROXY: "localhost,127.0.0.1" });
  const replicas = [start(0), start(1)];
  try {
    const lease = async () => {
      const r = await b.kube.call(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/quay-bridge-leader`,
      );
      return r.status === 200 ? r.body.spec.holderIdentity as string : undefined;
    };
    const leader = await until("a leader", lease, 20_000);
    const leaderIndex = leader === "replica-0" ? 0 : 1;
    const follower = 1 - leaderIndex;

    for (const ns of ["ha-1", "ha-2"]) await b.createProject(ns);
    for (const ns of ["ha-1", "ha-2"]) await synced(b, ns);

    // Both replicas are ready; only the leader says so in its metrics.
    const metrics = async (i: number) => await (await fetch(`http://127.0.0.1:${ports[i]}/metrics`)).text();
    await until("both ready", async () => {
      for (const p of ports) if ((await fetch(`http://127.0.0.1:${p}/readyz`)).status !== 200) return false;
      return true;
    }, 20_000);
    const leaderMetrics = await metrics(leaderIndex);
    assert.match(leaderMetrics, /^quay_bridge_leader 1$/m);
    assert.match(leaderMetrics, /quay_bridge_reconciles_total\{[^}]*\} \d+/);
    assert.match(leaderMetrics, /quay_bridge_quay_requests_total\{[^}]*route="[^"]+"[^}]*\} \d+/);
    assert.match(leaderMetrics, /quay_bridge_quay_request_duration_seconds_bucket\{/);
    assert.match(leaderMetrics, /quay_bridge_queue_depth\{/);
    assert.match(leaderMetrics, /^quay_bridge_managed_namespaces\{state="Ready"\} 2$/m);
    assert.match(leaderMetrics, /^quay_bridge_quay_reachable\{integration="quay"\} 1$/m);
    assert.match(await metrics(follower), /^quay_bridge_leader 0$/m);
    assert.equal((await fetch(`http://127.0.0.1:${ports[follower]}/healthz`)).status, 200);

    // The leader dies without releasing its Lease.
    replicas[leaderIndex]?.kill("SIGKILL");
    const killedAt = Date.now();
    await b.createProject("ha-3");
    await until("the follower leads", async () => (await lease()) === `replica-${follower}`, 20_000);
    const handover = Date.now() - killedAt;
    assert.ok(handover < 3_000 + 2_000, `handover took ${handover} ms`);
    await synced(b, "ha-3");

    // Nothing was done twice: one organization creation per namespace.
    const calls = b.quayWorld.calls();
    assert.equal(calls["POST /api/v1/organization/"], 3, JSON.stringify(calls));
    for (const ns of ["ha-1", "ha-2", "ha-3"]) {
      const robots = await b.quay.ok("GET", `/api/v1/organization/openshift_${ns}/robots`);
      assert.equal(robots.robots.length, 3);
    }

    // SIGTERM: the new leader finishes, releases the Lease and exits 0.
    replicas[follower]?.kill("SIGTERM");
    const status = await replicas[follower]?.status;
    assert.equal(status?.code, 0, replicas[follower]?.lines.slice(-10).join("\n"));
    const released = await b.kube.ok(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/quay-bridge-leader`,
    );
    assert.ok(!released.spec.holderIdentity, JSON.stringify(released.spec));
    // Logs are JSON lines with levels, and never hold the token.
    const logs = replicas[follower]?.lines ?? [];
    assert.ok(logs.length > 0);
    for (const line of logs) {
      const parsed = JSON.parse(line);
      assert.ok(["debug", "info", "warn", "error"].includes(parsed.level), line);
      assert.ok(!line.includes(b.quayWorld.adminToken), "token in logs");
    }
  } finally {
    for (const r of replicas) r.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.status));
    await b.close();
  }
});
