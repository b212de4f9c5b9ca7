/**
 * @module
 * Fuzzing the notification receiver: arbitrary paths, methods and bodies, and authenticated
 * deliveries with arbitrary JSON. It never answers 500, an unauthenticated request never reaches the
 * port, and an event reaches the port only when it is a valid `repo_push` for the URL's repository.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { newSecret, notificationUrl } from "./auth.ts";
import type { RepoPushEvent } from "./payload.ts";
import { createNotificationReceiver } from "./receiver.ts";

const ORG = "openshift_team-a";

function setup() {
  const secret = newSecret();
  const delivered: RepoPushEvent[] = [];
  const handler = createNotificationReceiver({
    port: {
      secret: (name) => (name === "quay" ? secret : undefined),
      deliver: (_integration, event) => {
        delivered.push(event);
        return { kind: "queued", namespace: "team-a", imageStream: event.name, tags: event.updatedTags };
      },
    },
    ratePerSecond: 1e9,
    burst: 1e9,
  });
  return { handler, delivered, url: notificationUrl("https://qb.example.com", secret, "quay", ORG, "app") };
}

Deno.test("receiver fuzz: arbitrary requests are answered 4xx and reach nothing", async () => {
  const t = setup();
  const segment = fc.oneof(
    fc.constantFrom("quay", ORG, "app", "", "%", "..", "%2F"),
    fc.string({ maxLength: 12 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
      fc.array(segment, { maxLength: 6 }),
      fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v))),
      async (method, segments, body) => {
        const path = "/quay-notifications/" + segments.map((s) => encodeURIComponent(s)).join("/");
        const r = await t.handler(
          new Request("https://qb.example.com" + path, { method, body: method === "GET" ? undefined : body }),
        );
        await r.body?.cancel();
        assert.ok([400, 401, 404, 405, 413].includes(r.status), `${method} ${path}: ${r.status}`);
      },
    ),
    { numRuns: 300 },
  );
  assert.equal(t.delivered.length, 0);
});

Deno.test("receiver fuzz: authenticated deliveries reach the port only as valid repo_push events", async () => {
  const t = setup();
  const tag = fc.oneof(
    { arbitrary: fc.constantFrom("v1", "latest", "a.b-c_d"), weight: 4 },
    { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
  );
  const mostly = (value: string) =>
    fc.oneof({ arbitrary: fc.constant(value), weight: 4 }, {
      arbitrary: fc.jsonValue({ maxDepth: 1 }),
      weight: 1,
    });
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        repository: mostly(`${ORG}/app`),
        namespace: mostly(ORG),
        name: mostly("app"),
        updated_tags: fc.oneof(
          { arbitrary: fc.array(tag, { maxLength: 4 }), weight: 4 },
          { arbitrary: fc.jsonValue({ maxDepth: 1 }), weight: 1 },
        ),
      }, { requiredKeys: [] }),
      async (event) => {
        const before = t.delivered.length;
        const r = await t.handler(new Request(t.url, { method: "POST", body: JSON.stringify(event) }));
        await r.body?.cancel();
        assert.ok([202, 400].includes(r.status), String(r.status));
        if (r.status === 202) {
          assert.equal(t.delivered.length, before + 1);
          const got = t.delivered.at(-1);
          assert.equal(got?.namespace, ORG);
          assert.equal(got?.name, "app");
          assert.ok(
            got && got.updatedTags.length > 0 && got.updatedTags.every((x) => /^[\w][\w.-]{0,127}$/.test(x)),
          );
        } else {
          assert.equal(t.delivered.length, before);
        }
      },
    ),
    { numRuns: 500 },
  );
  assert.ok(t.delivered.length > 0, "some generated events were valid");
});
