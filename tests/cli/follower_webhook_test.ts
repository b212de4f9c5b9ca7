/**
 * Two replicas with the self-managed webhook: the leader writes the certificate Secret and the
 * MutatingWebhookConfiguration; the follower serves admissions too (from its own caches, with the
 * leader's certificate), so a Service in front of both never routes to a replica that cannot answer.
 */
import assert from "node:assert/strict";
import { OPERATOR_NAMESPACE, startBridge, synced, until } from "../integration/harness.ts";
import { buildReview, decodeReview } from "../webhook/fixtures.ts";
import { freePort, replicaFlags, startOperatorProcess } from "./process.ts";

Deno.test("the follower serves admissions with the leader's certificate while only the leader writes", async () => {
  const b = await startBridge({ start: false });
  const ports = [freePort(), freePort()];
  const start = (i: number) =>
    startOperatorProcess([
      ...replicaFlags(b.kubeconfig, OPERATOR_NAMESPACE, i),
      "--webhook-mode",
      "self-managed",
      "--webhook-host",
      "127.0.0.1",
      "--webhook-port",
      String(ports[i]),
      "--ops-port",
      "0",
    ], { NO_PROXY: "localhost,127.0.0.1" });
  const replicas = [start(0), start(1)];
  try {
    const leader = await until("a leader", async () => {
      const r = await b.kube.call(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/quay-bridge-leader`,
      );
      return r.status === 200 ? r.body.spec.holderIdentity as string : undefined;
    }, 20_000);
    const follower = leader === "replica-0" ? 1 : 0;
    await b.createProject("served");
    await synced(b, "served");

    const secret = await until("the webhook certificate Secret", async () => {
      const r = await b.kube.call(
        "GET",
        `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/quay-bridge-webhook-certs`,
      );
      return r.status === 200 ? r.body : undefined;
    });
    const ca = atob(secret.data["ca.crt"]);
    // The configuration points at the leader, which wrote it.
    const leaderUrl = `https://127.0.0.1:${ports[1 - follower]}/admissionwebhook`;
    await until("the leader to register the webhook at its address", async () => {
      const r = await b.kube.call(
        "GET",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/quay-bridge",
      );
      return r.status === 200 && r.body.webhooks?.[0]?.clientConfig?.url === leaderUrl;
    }, 20_000);

    const http = Deno.createHttpClient({ caCerts: [ca] });
    try {
      const answer = await until("the follower to answer", async () => {
        const response = await fetch(`https://127.0.0.1:${ports[follower]}/admissionwebhook`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(buildReview({ namespace: "served", name: "app-1" })),
          client: http,
        }).catch(() => undefined);
        if (!response || response.status !== 200) {
          await response?.body?.cancel();
          return undefined;
        }
        const review = decodeReview(await response.json());
        return review.patch ? review : undefined;
      }, 20_000);
      assert.equal(answer.response.allowed, true);
      const name = answer.patch?.find((op) => op.path === "/spec/output/to/name");
      assert.equal(name?.value, `${b.quayWorld.registryHost}/openshift_served/app:latest`);
    } finally {
      http.close();
    }
  } finally {
    for (const r of replicas) r.kill("SIGTERM");
    const statuses = await Promise.all(replicas.map((r) => r.status));
    await b.close();
    for (const [i, s] of statuses.entries()) assert.equal(s.code, 0, replicas[i]?.lines.slice(-8).join("\n"));
  }
});
