import assert from "node:assert/strict";
import { newSecret, notificationUrl } from "./auth.ts";
import type { RepoPushEvent } from "./payload.ts";
import {
  createNotificationReceiver,
  type DeliveryRouting,
  type ReceiverOutcome,
  TokenBuckets,
} from "./receiver.ts";

const ORG = "openshift_team-a";

function setup(options: { rate?: number; burst?: number; maxBody?: number } = {}) {
  const secret = newSecret();
  const delivered: { integration: string; event: RepoPushEvent }[] = [];
  const outcomes: ReceiverOutcome[] = [];
  let clock = 0;
  const handler = createNotificationReceiver({
    port: {
      secret: (name) => (name === "quay" ? secret : undefined),
      deliver: (integration, event): DeliveryRouting => {
        delivered.push({ integration, event });
        return event.name === "unmanaged"
          ? { kind: "ignored", reason: "no ImageStream for this repository" }
          : { kind: "queued", namespace: "team-a", imageStream: event.name, tags: event.updatedTags };
      },
    },
    ratePerSecond: options.rate ?? 50,
    burst: options.burst ?? 200,
    maxBodyBytes: options.maxBody,
    now: () => clock,
    onRequest: (o) => outcomes.push(o),
  });
  const url = (repo: string, s = secret, integration = "quay") =>
    notificationUrl("https://qb.example.com", s, integration, ORG, repo);
  const body = (repo: string, tags: unknown = ["v1"]) =>
    JSON.stringify({ repository: `${ORG}/${repo}`, namespace: ORG, name: repo, updated_tags: tags });
  const post = (target: string, text: string, init: RequestInit = {}) =>
    handler(
      new Request(target, {
        method: "POST",
        body: text,
        headers: { "content-type": "application/json" },
        ...init,
      }),
    );
  return { handler, url, body, post, delivered, outcomes, tick: (ms: number) => (clock += ms) };
}

Deno.test("receiver: an authenticated repo_push is queued (202)", async () => {
  const t = setup();
  const r = await t.post(t.url("app"), t.body("app", ["v1", "latest"]));
  assert.equal(r.status, 202);
  assert.deepEqual(await r.json(), { status: "Queued", imageStream: "team-a/app", tags: ["v1", "latest"] });
  assert.deepEqual(t.delivered, [{
    integration: "quay",
    event: { namespace: ORG, name: "app", updatedTags: ["v1", "latest"] },
  }]);
  assert.deepEqual(t.outcomes, ["queued"]);
});

Deno.test("receiver: no token, a wrong token, another repository's token, an unknown integration: 401, nothing delivered", async () => {
  const t = setup();
  const good = new URL(t.url("app"));
  const otherRepoToken = new URL(t.url("other")).pathname.split("/").at(-1);
  const targets = [
    good.href.slice(0, good.href.lastIndexOf("/") + 1) + "x", // wrong token
    good.href.slice(0, good.href.lastIndexOf("/") + 1) + otherRepoToken, // token of another repository
    t.url("app", newSecret()), // another secret
    t.url("app", newSecret(), "nope"), // unknown integration
  ];
  for (const target of targets) {
    const r = await t.post(target, t.body("app"));
    assert.equal(r.status, 401, target);
    assert.equal((await r.json()).reason, "Unauthorized");
  }
  // Without a token.
  const bare = good.origin + good.pathname.slice(0, good.pathname.lastIndexOf("/"));
  for (const target of [bare, bare + "/"]) assert.equal((await t.post(target, t.body("app"))).status, 401);
  // Not a receiver path at all.
  assert.equal((await t.post(good.origin + "/quay-notifications/quay/x", t.body("app"))).status, 404);
  assert.equal(t.delivered.length, 0);
});

Deno.test("receiver: forged or malformed bodies are 400, nothing delivered", async () => {
  const t = setup();
  for (
    const text of [
      "{",
      "[]",
      t.body("other"), // a body for another repository on app's URL
      t.body("app", []),
      t.body("app", ["bad tag"]),
      JSON.stringify({ repository: `${ORG}/app`, namespace: ORG, name: "app" }),
    ]
  ) {
    const r = await t.post(t.url("app"), text);
    assert.equal(r.status, 400, text);
  }
  assert.equal(t.delivered.length, 0);
});

Deno.test("receiver: oversized bodies are 413 whether declared or streamed", async () => {
  const t = setup({ maxBody: 1024 });
  const big = t.body("app", Array.from({ length: 200 }, (_, i) => `tag${i}`));
  assert.equal((await t.post(t.url("app"), big)).status, 413);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(512));
      c.close();
    },
  });
  assert.equal((await t.post(t.url("app"), "", { body: stream })).status, 413);
  assert.equal(t.delivered.length, 0);
});

Deno.test("receiver: deliveries beyond the integration's rate get 429 with Retry-After", async () => {
  const t = setup({ rate: 2, burst: 3 });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await t.post(t.url("app"), t.body("app"))).status);
  assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
  const r = await t.post(t.url("app"), t.body("app"));
  assert.equal(r.headers.get("retry-after"), "1");
  await r.body?.cancel();
  t.tick(1000);
  assert.equal((await t.post(t.url("app"), t.body("app"))).status, 202);
  // Unauthenticated requests do not use up the integration's tokens.
  const t2 = setup({ rate: 1, burst: 1 });
  for (let i = 0; i < 5; i++) await t2.post(t2.url("app", newSecret()), t2.body("app"));
  assert.equal((await t2.post(t2.url("app"), t2.body("app"))).status, 202);
});

Deno.test("receiver: unmanaged repository is answered 200 without effect; wrong method 405", async () => {
  const t = setup();
  const r = await t.post(t.url("unmanaged"), t.body("unmanaged"));
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: "Ignored", message: "no ImageStream for this repository" });
  const get = await t.handler(new Request(t.url("app")));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
});

Deno.test("TokenBuckets refill at the rate, capped at the burst", () => {
  let now = 0;
  const b = new TokenBuckets(10, 2, () => now);
  assert.deepEqual([b.take("a"), b.take("a"), b.take("a")], [true, true, false]);
  assert.equal(b.take("b"), true);
  now += 100;
  assert.equal(b.take("a"), true);
  assert.equal(b.take("a"), false);
  now += 10_000;
  assert.deepEqual([b.take("a"), b.take("a"), b.take("a")], [true, true, false]);
});
