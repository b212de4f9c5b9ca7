/**
 * @module
 * The Quay world's repository notifications, through quay-bridge's own Quay client and over HTTPS:
 * the shapes and answers the real Quay gives (probed against it: list on a missing repository is an
 * empty list, Quay's URL rules, 400 for a missing uuid on delete and reset, 404 on get), and
 * asynchronous `repo_push` delivery when a tag is pushed to the registry.
 */
import assert from "node:assert/strict";
import { QuayClient } from "../../../src/quay/client.ts";
import { QuayApiError } from "../../../src/errors.ts";
import { pushImage } from "./registry_client.ts";
import { createOrg, createRepo, createRobot, withQuay } from "./testing.ts";

function receiver() {
  const received: { path: string; body: unknown; contentType: string | null }[] = [];
  let status = 200;
  const server = Deno.serve({ hostname: "127.0.0.2", port: 0, onListen() {} }, async (req) => {
    received.push({
      path: new URL(req.url).pathname,
      body: await req.json().catch(() => undefined),
      contentType: req.headers.get("content-type"),
    });
    return new Response("ok", { status });
  });
  return {
    url: `http://127.0.0.2:${server.addr.port}`,
    received,
    setStatus: (s: number) => (status = s),
    close: () => server.shutdown(),
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("world Quay: repository notifications API answers as Quay does", async () => {
  await withQuay({}, async (h) => {
    const quay = new QuayClient({
      baseUrl: h.quay.url,
      token: () => h.quay.adminToken,
      caBundle: h.quay.caPem,
    });
    try {
      await createOrg(h, "acme");
      await createRepo(h, "acme", "app");
      assert.deepEqual(await quay.listRepositoryNotifications("acme", "app"), []);
      // Quay lists nothing (200) for a repository that does not exist.
      assert.deepEqual(await quay.listRepositoryNotifications("acme", "missing"), []);
      const created = await quay.createRepositoryNotification("acme", "app", {
        event: "repo_push",
        method: "webhook",
        config: { url: "https://127.0.0.2:9/hook" },
        title: "quay-bridge:quay",
      });
      assert.match(created.uuid, /^[0-9a-f-]{36}$/);
      assert.deepEqual({ ...created, uuid: "" }, {
        uuid: "",
        title: "quay-bridge:quay",
        event: "repo_push",
        method: "webhook",
        config: { url: "https://127.0.0.2:9/hook" },
        event_config: {},
        number_of_failures: 0,
      });
      const untitled = await quay.createRepositoryNotification("acme", "app", {
        event: "repo_push",
        method: "webhook",
        config: { url: "http://127.0.0.3/x" },
      });
      assert.equal(untitled.title, null);
      assert.deepEqual(
        (await quay.listRepositoryNotifications("acme", "app")).map((n) => n.uuid),
        [created.uuid, untitled.uuid],
      );
      const get = await h.call("GET", `/api/v1/repository/acme/app/notification/${created.uuid}`);
      assert.equal(get.status, 200);
      assert.deepEqual(get.json, created);
      const missing = await h.call(
        "GET",
        "/api/v1/repository/acme/app/notification/00000000-0000-0000-0000-000000000000",
      );
      assert.equal(missing.status, 404);
      assert.equal((missing.json as { error_type: string }).error_type, "not_found");

      for (
        const [config, detail] of [
          [{ url: "http://localhost:9/x" }, "Invalid webhook URL"],
          [{ url: "https://127.0.0.1:9/x" }, "Invalid webhook URL"],
          [{ url: "ftp://example.com/x" }, "Invalid webhook URL"],
          [{}, "Missing webhook URL"],
        ] as const
      ) {
        await assert.rejects(
          quay.createRepositoryNotification("acme", "app", { event: "repo_push", method: "webhook", config }),
          (e: unknown) => e instanceof QuayApiError && e.status === 400 && e.message.endsWith(detail),
        );
      }
      const noEventConfig = await h.call("POST", "/api/v1/repository/acme/app/notification/", {
        body: { event: "repo_push", method: "webhook", config: { url: "http://127.0.0.2/x" } },
      });
      assert.equal(noEventConfig.status, 400);
      assert.match(
        (noEventConfig.json as { detail: string }).detail,
        /^'eventConfig' is a required property/,
      );

      assert.equal(await quay.resetRepositoryNotificationFailures("acme", "app", created.uuid), true);
      assert.equal(await quay.deleteRepositoryNotification("acme", "app", created.uuid), true);
      assert.equal(await quay.deleteRepositoryNotification("acme", "app", created.uuid), false);
      assert.equal(await quay.resetRepositoryNotificationFailures("acme", "app", created.uuid), false);
      const again = await h.call("DELETE", `/api/v1/repository/acme/app/notification/${created.uuid}`);
      assert.equal(again.status, 400);
      assert.equal(
        (again.json as { detail: string }).detail,
        `No repository notification found for: acme, app, ${created.uuid}`,
      );
      // Someone who is not an admin of the repository may not read them.
      const outsider = await h.call("GET", "/api/v1/repository/acme/app/notification/", {
        token: h.quay.createToken({ user: "someone", scopes: ["repo:read"] }),
      });
      assert.equal(outsider.status, 403);
    } finally {
      quay.close();
    }
  });
});

Deno.test("world Quay: a tag pushed to the registry is delivered as repo_push to each webhook, asynchronously", async () => {
  const hook = receiver();
  try {
    await withQuay({ notifications: { pollMs: 50, retryAfterMs: 100 } }, async (h) => {
      const quay = new QuayClient({
        baseUrl: h.quay.url,
        token: () => h.quay.adminToken,
        caBundle: h.quay.caPem,
      });
      try {
        await createOrg(h, "acme");
        await createRepo(h, "acme", "app");
        await createRepo(h, "acme", "other");
        const robot = await createRobot(h, "acme", "pusher");
        await h.call("PUT", `/api/v1/repository/acme/app/permissions/user/${robot.name}`, {
          body: { role: "write" },
        });
        const n = await quay.createRepositoryNotification("acme", "app", {
          event: "repo_push",
          method: "webhook",
          config: { url: `${hook.url}/hook/app` },
        });
        await quay.createRepositoryNotification("acme", "other", {
          event: "repo_push",
          method: "webhook",
          config: { url: `${hook.url}/hook/other` },
        });
        await pushImage({
          registryUrl: h.quay.url,
          client: h.client,
          repository: "acme/app",
          tag: "v1",
          username: robot.name,
          password: robot.token,
        });
        await until("the delivery", () => hook.received.length === 1);
        assert.deepEqual(hook.received[0], {
          path: "/hook/app",
          contentType: "application/json",
          body: {
            repository: "acme/app",
            namespace: "acme",
            name: "app",
            docker_url: `${h.quay.registryHost}/acme/app`,
            homepage: `https://${h.quay.registryHost}/repository/acme/app`,
            updated_tags: ["v1"],
          },
        });
        // A failing receiver counts failures; at 3 Quay stops delivering until reset.
        hook.setStatus(500);
        await pushImage({
          registryUrl: h.quay.url,
          client: h.client,
          repository: "acme/app",
          tag: "v2",
          username: robot.name,
          password: robot.token,
        });
        await until(
          "three failures",
          () => (h.quay.notifications.deliveries().filter((d) => d.status === 500).length >= 3),
        );
        const [listed] = await quay.listRepositoryNotifications("acme", "app");
        assert.equal(listed?.number_of_failures, 3);
        const before = h.quay.notifications.deliveries().length;
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(h.quay.notifications.deliveries().length, before, "no delivery once disabled");
        hook.setStatus(200);
        await quay.resetRepositoryNotificationFailures("acme", "app", n.uuid);
        await h.call("POST", `/api/v1/repository/acme/app/notification/${n.uuid}/test`);
        await until(
          "the test delivery",
          () =>
            hook.received.some((r) => (r.body as { updated_tags?: string[] })?.updated_tags?.includes("foo")),
        );
        // Deleting the repository deletes its notifications.
        await h.call("DELETE", "/api/v1/repository/acme/app");
        await createRepo(h, "acme", "app");
        assert.deepEqual(await quay.listRepositoryNotifications("acme", "app"), []);
      } finally {
        quay.close();
      }
    });
  } finally {
    await hook.close();
  }
});
