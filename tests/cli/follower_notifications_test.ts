/**
 * Two replicas with Quay push notifications: the leader creates the notification Secret and the
 * notifications in Quay; a delivery that lands on the follower (a Service in front of both routes
 * anywhere) is authenticated from the follower's cache and imported by the follower.
 */
import assert from "node:assert/strict";
import { OPERATOR_NAMESPACE, startBridge, synced, until } from "../integration/harness.ts";
import { notificationUrl } from "../../src/notifications/auth.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { freePort, replicaFlags, startOperatorProcess } from "./process.ts";

const NS = "pushed";
const ORG = `openshift_${NS}`;

Deno.test("a delivery to the follower is authenticated and imported there", async () => {
  const b = await startBridge({
    openshift: true,
    start: false,
    // The URL only names where Quay would deliver; this test delivers itself, to each replica.
    integrationSpec: { notifications: { url: "https://127.0.0.2:9" } },
  });
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
    ], { NO_PROXY: "localhost,127.0.0.1,127.0.0.2" });
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
    await b.createProject(NS);
    await synced(b, NS);
    await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams`, {
      metadata: { name: "app" },
      spec: { tags: [{ name: "v1" }] },
    });
    await until("the leader's notification in Quay", async () => {
      const got = await b.quay.ok("GET", `/api/v1/repository/${ORG}/app/notification/`);
      return got.notifications.some((n: { title: string }) => n.title === "quay-bridge:quay");
    }, 20_000);
    const certs = await until("the webhook certificate Secret", async () => {
      const r = await b.kube.call(
        "GET",
        `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/quay-bridge-webhook-certs`,
      );
      return r.status === 200 ? r.body : undefined;
    });
    const ca = atob(certs.data["ca.crt"]);
    const stored = await b.kube.ok(
      "GET",
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/quay-bridge-notifications-quay`,
    );
    const secret = atob(stored.data.secret);

    const robot = await b.quay.ok("GET", `/api/v1/organization/${ORG}/robots/builder`);
    const pushed = await pushImage({
      registryUrl: b.quayWorld.url,
      caPem: b.quayWorld.caPem,
      repository: `${ORG}/app`,
      tag: "v1",
      username: robot.name,
      password: robot.token,
    });
    const path = new URL(notificationUrl("https://x", secret, "quay", ORG, "app")).pathname;
    const http = Deno.createHttpClient({ caCerts: [ca] });
    try {
      const status = await until("the follower to accept the delivery", async () => {
        const r = await fetch(`https://127.0.0.1:${ports[follower]}${path}`, {
          method: "POST",
          client: http,
          body: JSON.stringify({
            repository: `${ORG}/app`,
            namespace: ORG,
            name: "app",
            updated_tags: ["v1"],
          }),
        }).catch(() => undefined);
        await r?.body?.cancel();
        return r?.status === 202 ? r.status : undefined;
      }, 20_000);
      assert.equal(status, 202);
    } finally {
      http.close();
    }
    await until("v1 imported by the follower", async () => {
      const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams/app`);
      const tag = (is.status?.tags ?? []).find((t: { tag: string }) => t.tag === "v1");
      return tag?.items?.[0]?.image === pushed.digest;
    }, 20_000);
    // Its log line may reach us after the ImageStream does (the pipe is read asynchronously).
    await until(
      "the follower to log the import",
      () => replicas[follower]?.lines.some((l) => l.includes("image imported after push")) || undefined,
      10_000,
    );
  } finally {
    for (const r of replicas) r.kill("SIGTERM");
    const statuses = await Promise.all(replicas.map((r) => r.status));
    await b.close();
    for (const [i, s] of statuses.entries()) assert.equal(s.code, 0, replicas[i]?.lines.slice(-8).join("\n"));
  }
});
