/**
 * @module
 * Quay push notifications end to end on the full world: the operator keeps one `repo_push`
 * notification per managed repository pointing at its receiver (served by the webhook server); an
 * image pushed straight to Quay with a robot's credentials (no Build) shows up as the ImageStream's
 * tag; deliveries without the right token or with a forged body are refused and import nothing; a
 * notification deleted by hand in Quay is back at the next resync; removing `spec.notifications`
 * removes them.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";
import { freePort } from "../cli/process.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { notificationUrl } from "../../src/notifications/auth.ts";

const IMPORTS = "CREATE image.openshift.io/v1/imagestreamimports";
const NS = "team-a";
const ORG = `openshift_${NS}`;

type Notification = { uuid: string; title: string | null; config: { url: string }; event: string };

async function ours(b: Bridge, repo: string): Promise<Notification[]> {
  const got = await b.quay.ok("GET", `/api/v1/repository/${ORG}/${repo}/notification/`);
  return (got.notifications as Notification[]).filter((n) => n.title === "quay-bridge:quay");
}

async function statusTag(b: Bridge, name: string, tag: string): Promise<string | undefined> {
  const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams/${name}`);
  const tags = (is.status?.tags ?? []) as { tag: string; items?: { image: string }[] }[];
  return tags.find((t) => t.tag === tag)?.items?.[0]?.image;
}

Deno.test({
  name: "a push to a managed Quay repository is imported at once; forged deliveries change nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const port = freePort();
    const base = `https://127.0.0.2:${port}`;
    const b = await startBridge({
      openshift: true,
      quay: { notifications: { pollMs: 100, retryAfterMs: 500 } },
      integrationSpec: { notifications: { url: base } },
      flags: [
        "--webhook-mode",
        "self-managed",
        "--webhook-host",
        "127.0.0.2",
        "--webhook-port",
        String(port),
        "--webhook-url",
        `${base}/admissionwebhook`,
        "--resync",
        "2s",
        // The audit log imports pushes too (steady_state_test.ts): off, so deliveries are what import.
        "--audit-interval",
        "0",
      ],
    });
    try {
      // Quay must trust the receiver's certificate: the self-managed CA, as published in the webhook configuration.
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
      b.quayWorld.notifications.trust(ca);

      await b.createProject(NS);
      await synced(b, NS);
      // `app` tracks tag v1 only (a spec tag); `all` tracks nothing yet.
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams`, {
        metadata: { name: "app" },
        spec: { tags: [{ name: "v1" }, { name: "ghost" }] },
      });
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams`, {
        metadata: { name: "web" },
      });
      const [notification] = await until("the notification on openshift_team-a/app", async () => {
        const list = await ours(b, "app");
        return list.length === 1 ? list : undefined;
      });
      assert.ok(notification);
      assert.equal(notification.event, "repo_push");
      assert.match(
        notification.config.url,
        new RegExp(`^${base}/quay-notifications/quay/${ORG}/app/[A-Za-z0-9_-]{43}$`),
      );
      // The per-integration secret is kept in a Secret of the operator's namespace.
      const secrets = await b.kube.ok(
        "GET",
        "/api/v1/namespaces/quay-bridge/secrets?labelSelector=app.kubernetes.io%2Fcomponent%3Dquay-notifications",
      );
      assert.deepEqual(secrets.items.map((s: { metadata: { name: string } }) => s.metadata.name), [
        "quay-bridge-notifications-quay",
      ]);

      // A push straight to Quay with the builder robot's credentials, no Build involved.
      const robot = await b.quay.ok("GET", `/api/v1/organization/${ORG}/robots/builder`);
      const client = Deno.createHttpClient({ caCerts: [b.quayWorld.caPem] });
      try {
        const started = Date.now();
        const pushed = await pushImage({
          registryUrl: b.quayWorld.url,
          client,
          repository: `${ORG}/app`,
          tag: "v1",
          username: robot.name,
          password: robot.token,
        });
        const image = await until("v1 imported", async () => {
          const got = await statusTag(b, "app", "v1");
          return got === pushed.digest ? got : undefined;
        }, 10_000);
        assert.equal(image, pushed.digest);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 10_000, `imported ${elapsed} ms after the push began`);
        type Ev = { reason: string; involvedObject: { kind: string; name: string }; message: string };
        await until("an ImageImported Event on the ImageStream", async () => {
          const events = await b.kube.ok("GET", `/api/v1/namespaces/${NS}/events`);
          return events.items.some((e: Ev) =>
            e.reason === "ImageImported" && e.involvedObject.kind === "ImageStream" &&
            e.involvedObject.name === "app" && e.message.includes(`${ORG}/app:v1`)
          );
        });

        // A tag the ImageStream does not track is not imported (importAllTags is off).
        const importsBefore = b.kubeWorld.requestCounts()[IMPORTS] ?? 0;
        const delivered = b.quayWorld.notifications.deliveries().length;
        await pushImage({
          registryUrl: b.quayWorld.url,
          client,
          repository: `${ORG}/app`,
          tag: "untracked",
          username: robot.name,
          password: robot.token,
        });
        await until("the delivery", () => b.quayWorld.notifications.deliveries().length > delivered);
        assert.equal(b.quayWorld.notifications.deliveries().at(-1)?.status, 202);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(b.kubeWorld.requestCounts()[IMPORTS] ?? 0, importsBefore);
        assert.equal(await statusTag(b, "app", "untracked"), undefined);

        // Deliveries without the right token, or with a forged body, are refused and import nothing.
        const direct = Deno.createHttpClient({ caCerts: [ca] });
        try {
          const post = async (path: string, body: unknown) => {
            const r = await fetch(base + path, {
              method: "POST",
              client: direct,
              headers: { "content-type": "application/json" },
              body: JSON.stringify(body),
            });
            await r.body?.cancel();
            return r.status;
          };
          const valid = new URL(notification.config.url).pathname;
          const forgedToken = valid.slice(0, valid.lastIndexOf("/") + 1) + "A".repeat(43);
          const event = { repository: `${ORG}/app`, namespace: ORG, name: "app", updated_tags: ["v1"] };
          assert.equal(await post(forgedToken, event), 401);
          assert.equal(await post(valid.slice(0, valid.lastIndexOf("/")), event), 401);
          assert.equal(await post(`/quay-notifications/quay/${ORG}/app/`, event), 401);
          assert.equal(await post(`/quay-notifications/quay/${ORG}`, event), 404);
          assert.equal(await post(valid, { ...event, updated_tags: "v1" }), 400);
          assert.equal(await post(valid, { ...event, repository: `${ORG}/other`, name: "other" }), 400);
          assert.equal(await post(valid, "garbage"), 400);
          // Authenticated (the token made from the integration's secret) but not a repository the
          // integration manages: answered 200 with the reason, no effect.
          const secretObject = await b.kube.ok(
            "GET",
            "/api/v1/namespaces/quay-bridge/secrets/quay-bridge-notifications-quay",
          );
          const secret = new TextDecoder().decode(Uint8Array.fromBase64(secretObject.data.secret));
          for (
            const [org, repo] of [["openshift_default", "app"], [ORG, "nostream"], ["other_team-a", "app"]]
          ) {
            const path =
              new URL(notificationUrl(base, secret, "quay", org as string, repo as string)).pathname;
            const r = await fetch(base + path, {
              method: "POST",
              client: direct,
              body: JSON.stringify({
                repository: `${org}/${repo}`,
                namespace: org,
                name: repo,
                updated_tags: ["v1"],
              }),
            });
            assert.equal(r.status, 200, `${org}/${repo}`);
            assert.equal((await r.json()).status, "Ignored");
          }
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(b.kubeWorld.requestCounts()[IMPORTS] ?? 0, importsBefore);
          // The real token and body are accepted; a burst of 20 deliveries for one tag causes one
          // import in flight and at most one after it (idempotent: the same image again).
          const statuses = await Promise.all(Array.from({ length: 20 }, () => post(valid, event)));
          assert.deepEqual(new Set(statuses), new Set([202]));
          await new Promise((r) => setTimeout(r, 500));
          const burstImports = (b.kubeWorld.requestCounts()[IMPORTS] ?? 0) - importsBefore;
          assert.ok(burstImports >= 1 && burstImports <= 2, `${burstImports} imports for a burst of 20`);
          assert.equal(await statusTag(b, "app", "v1"), image);

          // A tracked tag Quay does not hold (a forged but authenticated delivery, or a tag deleted
          // since): the import fails, a Warning Event says so, nothing is written.
          assert.equal(await post(valid, { ...event, updated_tags: ["ghost"] }), 202);
          type Ev = { reason: string; type: string; message: string };
          await until("an ImportFailed Event", async () => {
            const events = await b.kube.ok("GET", `/api/v1/namespaces/${NS}/events`);
            return events.items.some((e: Ev) =>
              e.reason === "ImportFailed" && e.type === "Warning" && e.message.includes(`${ORG}/app:ghost`)
            );
          });
          assert.equal(await statusTag(b, "app", "ghost"), undefined);
        } finally {
          direct.close();
        }
      } finally {
        client.close();
      }

      const exposition = b.running?.metrics.render() ?? "";
      for (const result of ["queued", "ignored", "unauthorized", "invalid", "not_found"]) {
        assert.match(
          exposition,
          new RegExp(`quay_bridge_notification_deliveries_total\\{result="${result}"\\} [1-9]`),
        );
      }

      // Deleted by hand in Quay: back at the next resync (2 s here).
      await b.quay.ok("DELETE", `/api/v1/repository/${ORG}/app/notification/${notification.uuid}`);
      const repaired = await until("the notification repaired", async () => {
        const list = await ours(b, "app");
        return list.length === 1 && list[0]?.uuid !== notification.uuid ? list[0] : undefined;
      }, 10_000);
      assert.equal(repaired.config.url, notification.config.url);

      // Rotation: deleting the Secret makes a new secret; every URL moves, the old one is refused.
      await b.kube.ok("DELETE", "/api/v1/namespaces/quay-bridge/secrets/quay-bridge-notifications-quay");
      const rotated = await until("the notification moved to the new secret", async () => {
        const list = await ours(b, "app");
        return list.length === 1 && list[0]?.config.url !== notification.config.url ? list[0] : undefined;
      }, 10_000);
      assert.ok(rotated.config.url.startsWith(`${base}/quay-notifications/quay/${ORG}/app/`));
      const probe = Deno.createHttpClient({ caCerts: [ca] });
      try {
        const old = await fetch(notification.config.url, {
          method: "POST",
          client: probe,
          body: JSON.stringify({
            repository: `${ORG}/app`,
            namespace: ORG,
            name: "app",
            updated_tags: ["v1"],
          }),
        });
        await old.body?.cancel();
        assert.equal(old.status, 401);
      } finally {
        probe.close();
      }

      // The ImageStream deleted, its repository retained (the default policy): the notification goes.
      await until("web's notification", async () => (await ours(b, "web")).length === 1);
      await b.kube.ok("DELETE", `/apis/image.openshift.io/v1/namespaces/${NS}/imagestreams/app`);
      await until("app's notification removed", async () => (await ours(b, "app")).length === 0, 10_000);
      await b.quay.ok("GET", `/api/v1/repository/${ORG}/app`);

      // Turning notifications off removes them.
      await b.applyIntegration("quay", { ...b.integrationSpec(), notifications: null });
      await until("web's notification removed", async () => (await ours(b, "web")).length === 0, 10_000);
    } finally {
      await b.close();
    }
  },
});
