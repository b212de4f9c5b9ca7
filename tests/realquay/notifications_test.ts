/**
 * @module
 * Quay push notifications against the real Quay (the proof): the operator, on the test
 * world's Kubernetes and OpenShift behaviours, manages a namespace in the real Quay; an image pushed
 * straight to the managed repository with the builder robot's credentials (no Build) becomes the
 * ImageStream's tag through the real notification worker's delivery; deliveries without the right
 * token or with a forged body are refused and import nothing; a notification deleted by hand in
 * Quay is back after the next resync.
 *
 * Needs a running real Quay: `QUAY_URL`, `QUAY_TOKEN` (super user) and `QUAY_CA` (PEM file) in the
 * environment, or the `quay.env` that `quay-server/start.sh` writes to
 * `~/.cache/quay-bridge/realquay/`; fails with a message saying so otherwise. Quay reaches the
 * receiver over plain http through a forwarder on 127.0.0.2 standing in for an edge-terminated Route
 * (Quay refuses webhook hosts localhost and 127.0.0.1; its CA bundle does not hold the operator's
 * self-managed CA). HTTPS straight to the webhook server: `notifications_tls_test.ts`.
 */
import assert from "node:assert/strict";
import { startBridge, synced, until } from "../integration/harness.ts";
import { freePort } from "../cli/process.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { startRealQuay } from "./mod.ts";
import { integrateRealQuay, openShiftForRealQuay } from "./bridge.ts";

const IMPORTS = "CREATE image.openshift.io/v1/imagestreamimports";

Deno.test({
  name:
    "real Quay: a robot's push is imported via the notification; forged deliveries change nothing; a deleted notification is repaired",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const real = await startRealQuay();
    const quayClient = Deno.createHttpClient({ caCerts: [real.caPem] });
    const quay = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(real.url + path, {
        method,
        client: quayClient,
        headers: { authorization: `Bearer ${real.token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : undefined };
    };
    const clusterId = `qbn${crypto.randomUUID().slice(0, 8)}`;
    const ns = "team-a";
    const org = `${clusterId}_${ns}`;
    const port = freePort();
    const receiver = `https://127.0.0.2:${port}`;
    // The forwarder: plain http on 127.0.0.2 to the operator's https receiver (the Route's part).
    let forwardClient: Deno.HttpClient | undefined;
    /** When Quay's deliveries came in (user agent python-requests). */
    const deliveries: { at: number; status: number }[] = [];
    const forwarder = Deno.serve({ hostname: "127.0.0.2", port: 0, onListen() {} }, async (req) => {
      if (!forwardClient) return new Response("not ready", { status: 503 });
      const url = new URL(req.url);
      const r = await fetch(receiver + url.pathname, {
        method: req.method,
        headers: req.headers,
        body: await req.arrayBuffer(),
        client: forwardClient,
      });
      if ((req.headers.get("user-agent") ?? "").startsWith("python-requests")) {
        deliveries.push({ at: Date.now(), status: r.status });
      }
      return new Response(await r.arrayBuffer(), { status: r.status, headers: r.headers });
    });
    const notifyBase = `http://127.0.0.2:${forwarder.addr.port}`;

    const b = await startBridge({
      integration: false,
      start: false,
      flags: [
        "--webhook-mode",
        "self-managed",
        "--webhook-host",
        "127.0.0.2",
        "--webhook-port",
        String(port),
        "--webhook-url",
        `${receiver}/admissionwebhook`,
        "--resync",
        "3s",
        // The audit log imports pushes too (audit_push_test.ts): off, so the delivery is what imports.
        "--audit-interval",
        "0",
      ],
    });
    const openshift = openShiftForRealQuay(b, real);
    try {
      await integrateRealQuay(b, real, {
        clusterId,
        namespaces: [ns],
        spec: { notifications: { url: notifyBase } },
      });
      const ca = await until("the webhook caBundle", async () => {
        const r = await b.kube.call(
          "GET",
          "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/quay-bridge",
        );
        const bundle = r.body?.webhooks?.[0]?.clientConfig?.caBundle;
        return typeof bundle === "string" && bundle
          ? new TextDecoder().decode(Uint8Array.fromBase64(bundle))
          : undefined;
      });
      forwardClient = Deno.createHttpClient({ caCerts: [ca] });

      await b.createProject(ns);
      await synced(b, ns, { clusterId, timeoutMs: 60_000 });
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
        metadata: { name: "app" },
        spec: { tags: [{ name: "v1" }] },
      });
      type N = { uuid: string; title: string; config: { url: string } };
      const ours = async () =>
        ((await quay("GET", `/api/v1/repository/${org}/app/notification/`)).json?.notifications as N[] ?? [])
          .filter((n) => n.title === "quay-bridge:quay");
      const [notification] = await until("the notification in the real Quay", async () => {
        const list = await ours();
        return list.length === 1 ? list : undefined;
      }, 30_000);
      assert.ok(notification);
      assert.ok(notification.config.url.startsWith(`${notifyBase}/quay-notifications/quay/${org}/app/`));

      const robot = (await quay("GET", `/api/v1/organization/${org}/robots/builder`)).json;
      const started = Date.now();
      const pushed = await pushImage({
        registryUrl: real.url,
        caPem: real.caPem,
        repository: `${org}/app`,
        tag: "v1",
        username: robot.name,
        password: robot.token,
      });
      const pushedAt = Date.now();
      await until("v1 imported from the real Quay", async () => {
        const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/app`);
        const tag = (is.status?.tags ?? []).find((t: { tag: string }) => t.tag === "v1");
        return tag?.items?.[0]?.image === pushed.digest ? true : undefined;
      }, 60_000);
      const importedAt = Date.now();
      const delivery = deliveries.find((d) => d.at >= started);
      assert.ok(delivery, "Quay delivered the repo_push notification");
      assert.equal(delivery.status, 202);
      Deno.stdout.writeSync(new TextEncoder().encode(
        `real Quay: push ${pushedAt - started} ms; Quay's delivery ${
          delivery.at - pushedAt
        } ms after the push ` +
          `(its worker polls every 10 s); tag in the ImageStream ${
            importedAt - pushedAt
          } ms after the push ` +
          `(${importedAt - delivery.at} ms after the delivery: the import pulls the manifest from Quay)\n`,
      ));
      // Bounded by the notification worker's 10 s poll period (plus its own processing).
      assert.ok(delivery.at - pushedAt <= 12_000, `delivered ${delivery.at - pushedAt} ms after the push`);

      // Forged deliveries, through the same way in as Quay's.
      const before = b.kubeWorld.requestCounts()[IMPORTS] ?? 0;
      const valid = new URL(notification.config.url).pathname;
      const event = { repository: `${org}/app`, namespace: org, name: "app", updated_tags: ["v1"] };
      const post = async (path: string, body: unknown) => {
        const r = await fetch(notifyBase + path, { method: "POST", body: JSON.stringify(body) });
        await r.body?.cancel();
        return r.status;
      };
      assert.equal(await post(valid.slice(0, valid.lastIndexOf("/") + 1) + "A".repeat(43), event), 401);
      assert.equal(await post(valid.slice(0, valid.lastIndexOf("/") + 1), event), 401);
      assert.equal(await post(valid, { ...event, updated_tags: [] }), 400);
      assert.equal(await post(valid, { ...event, namespace: "someone_else" }), 400);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(b.kubeWorld.requestCounts()[IMPORTS] ?? 0, before);

      // Deleted by hand in Quay: back after the next resync (3 s).
      assert.equal(
        (await quay("DELETE", `/api/v1/repository/${org}/app/notification/${notification.uuid}`)).status,
        204,
      );
      const repaired = await until("the notification repaired", async () => {
        const list = await ours();
        return list.length === 1 && list[0]?.uuid !== notification.uuid ? list[0] : undefined;
      }, 20_000);
      assert.equal(repaired.config.url, notification.config.url);
    } finally {
      await b.running?.stop();
      await openshift.stop();
      await b.close();
      forwardClient?.close();
      await forwarder.shutdown();
      // The real Quay is shared: remove what this test made (and check nothing else was made).
      await quay("DELETE", `/api/v1/organization/${org}`).catch(() => {});
      const left = await quay("GET", "/api/v1/superuser/organizations/").catch(() => undefined);
      const strays = ((left?.json?.organizations ?? []) as { name: string }[])
        .map((o) => o.name).filter((name) => name.startsWith(`${clusterId}_`));
      for (const name of strays) await quay("DELETE", `/api/v1/organization/${name}`).catch(() => {});
      assert.deepEqual(strays, [], "organizations left in the shared Quay");
      quayClient.close();
    }
  },
});
