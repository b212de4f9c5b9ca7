/**
 * @module
 * The notification controller's reconcile against the world Quay (through quay-bridge's own Quay
 * client): created once and then left alone, replaced when the URL changes, recreated when deleted
 * by hand, reset when Quay disabled it after three failed deliveries, removed from a repository whose
 * ImageStream is gone and everywhere when notifications are turned off; an integration that never
 * had notifications costs no Quay call.
 */
import assert from "node:assert/strict";
import type { Integration } from "../../src/integration_spec.ts";
import { silentLogger } from "../../src/log.ts";
import {
  type NotificationControllerContext,
  reconcileNamespaceNotifications,
} from "../../src/notifications/controller.ts";
import { newSecret, notificationUrl } from "../../src/notifications/auth.ts";
import { QuayClient } from "../../src/quay/client.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { createOrg, createRepo, createRobot, withQuay } from "../world/quay/testing.ts";

const ORG = "openshift_team-a";

Deno.test("notification controller: create, keep, replace, repair, reset, remove; no Quay call when never on", async () => {
  await withQuay({ notifications: { pollMs: 20, retryAfterMs: 20, timeoutMs: 500 } }, async (h) => {
    const client = new QuayClient({
      baseUrl: h.quay.url,
      token: () => h.quay.adminToken,
      caBundle: h.quay.caPem,
    });
    try {
      await createOrg(h, ORG);
      await createRepo(h, ORG, "app");
      await createRepo(h, ORG, "web");
      await createRepo(h, ORG, "retained");
      let integration = {
        name: "quay",
        organizationPrefix: "openshift",
        notifications: { url: "https://qb.example.com", importAllTags: false },
      } as unknown as Integration;
      let streams = new Set(["app", "web"]);
      let secret = newSecret();
      let hadNotifications = true;
      const ctx: NotificationControllerContext = {
        target: (namespace) => ({ namespace, integration, client, imageStreams: streams }),
        ensureSecret: () => Promise.resolve(secret),
        hadNotifications: () => hadNotifications,
        logger: silentLogger,
        resyncMs: 600_000,
        cleaned: new Set(),
      };
      const run = async () =>
        (await reconcileNamespaceNotifications(ctx, "team-a")).changes.map((c) =>
          `${c.change} ${c.repository.slice(ORG.length + 1)}`
        ).sort();
      const ours = async (repo: string) =>
        (await client.listRepositoryNotifications(ORG, repo)).filter((n) => n.title === "quay-bridge:quay");
      // Someone else's notification on the same repository.
      await client.createRepositoryNotification(ORG, "app", {
        event: "repo_push",
        method: "webhook",
        config: { url: "https://ci.example.com/hook" },
        title: "CI",
      });

      assert.deepEqual(await run(), ["created app", "created web"]);
      const [first] = await ours("app");
      assert.equal(first?.config.url, notificationUrl("https://qb.example.com", secret, "quay", ORG, "app"));
      const action = await reconcileNamespaceNotifications(ctx, "team-a");
      assert.deepEqual(action, { action: { requeueAfterMs: 600_000 }, changes: [] });

      // A new secret (the Secret was deleted) or URL: every notification moves.
      secret = newSecret();
      assert.deepEqual(await run(), ["replaced app", "replaced web"]);
      integration = {
        ...integration,
        notifications: { url: "https://qb2.example.com", importAllTags: false },
      };
      assert.deepEqual(await run(), ["replaced app", "replaced web"]);
      assert.equal((await ours("app")).length, 1);
      assert.equal(
        (await client.listRepositoryNotifications(ORG, "app")).filter((n) => n.title === "CI").length,
        1,
      );

      // Deleted by hand.
      const [current] = await ours("web");
      assert.ok(current);
      await client.deleteRepositoryNotification(ORG, "web", current.uuid);
      assert.deepEqual(await run(), ["created web"]);

      // Disabled by Quay after three failed deliveries (nothing listens at the URL): reset.
      const robot = await createRobot(h, ORG, "pusher");
      await h.call("PUT", `/api/v1/repository/${ORG}/app/permissions/user/${robot.name}`, {
        body: { role: "write" },
      });
      const closed = `http://127.0.0.2:9`;
      integration = { ...integration, notifications: { url: closed, importAllTags: false } };
      await run();
      await pushImage({
        registryUrl: h.quay.url,
        client: h.client,
        repository: `${ORG}/app`,
        tag: "v1",
        username: robot.name,
        password: robot.token,
      });
      const deadline = Date.now() + 10_000;
      while ((await ours("app"))[0]?.number_of_failures !== 3) {
        if (Date.now() > deadline) throw new Error("not disabled");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(await run(), ["reset app"]);
      assert.equal((await ours("app"))[0]?.number_of_failures, 0);

      // The ImageStream is gone, its repository retained: ours goes, the CI one stays.
      streams = new Set(["web"]);
      assert.deepEqual(await run(), ["deleted app"]);
      assert.deepEqual((await client.listRepositoryNotifications(ORG, "app")).map((n) => n.title), ["CI"]);

      // Turned off: removed everywhere, once.
      integration = { ...integration, notifications: undefined };
      assert.deepEqual(await run(), ["deleted web"]);
      h.quay.resetCalls();
      assert.deepEqual(await run(), []);
      assert.deepEqual(h.quay.calls(), {}, "already cleaned: no Quay call");

      // An integration that never had notifications costs nothing.
      hadNotifications = false;
      ctx.cleaned.clear();
      assert.deepEqual(await run(), []);
      assert.deepEqual(h.quay.calls(), {});
    } finally {
      client.close();
    }
  });
});
