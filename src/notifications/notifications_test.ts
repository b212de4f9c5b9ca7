import assert from "node:assert/strict";
import {
  isUsableSecret,
  newSecret,
  notificationUrl,
  parseReceiverPath,
  repositoryToken,
  verifyRepositoryToken,
} from "./auth.ts";
import { planRepository } from "./controller.ts";
import { parseTagKey, tagKey, trackedTags } from "./importer.ts";
import { MAX_UPDATED_TAGS, parseRepoPush } from "./payload.ts";
import { parseNotificationSettings } from "./settings.ts";
import type { QuayNotification } from "../quay/client.ts";
import { API_V1, parseIntegration } from "../integration_spec.ts";

const expected = { namespace: "openshift_team-a", name: "app" };
/** What Quay's notification worker POSTs after `podman push …/openshift_team-a/app:v1`. */
const QUAY_BODY = {
  repository: "openshift_team-a/app",
  namespace: "openshift_team-a",
  name: "app",
  docker_url: "quay.example.com/openshift_team-a/app",
  homepage: "https://quay.example.com/repository/openshift_team-a/app",
  updated_tags: ["v1"],
};

Deno.test("parseRepoPush accepts Quay's repo_push body and dedupes tags", () => {
  assert.deepEqual(parseRepoPush(JSON.stringify(QUAY_BODY), expected), {
    ok: true,
    event: { namespace: "openshift_team-a", name: "app", updatedTags: ["v1"] },
  });
  const twice = { ...QUAY_BODY, updated_tags: ["latest", "foo", "latest"], pruned_image_count: 3 };
  const parsed = parseRepoPush(JSON.stringify(twice), expected);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.event.updatedTags, ["latest", "foo"]);
});

Deno.test("parseRepoPush refuses forged and malformed bodies with a reason", () => {
  const cases: [string, RegExp][] = [
    ["not json", /not JSON/],
    ["[1]", /not a JSON object/],
    ["null", /not a JSON object/],
    [JSON.stringify({ ...QUAY_BODY, namespace: "openshift_other" }), /repository does not match/],
    [
      JSON.stringify({ ...QUAY_BODY, repository: "openshift_other/app", namespace: "openshift_other" }),
      /another repository/,
    ],
    [JSON.stringify({ ...QUAY_BODY, updated_tags: [] }), /non-empty/],
    [JSON.stringify({ ...QUAY_BODY, updated_tags: "v1" }), /non-empty/],
    [JSON.stringify({ ...QUAY_BODY, updated_tags: ["../x"] }), /not a tag/],
    [JSON.stringify({ ...QUAY_BODY, updated_tags: [7] }), /not a tag/],
    [JSON.stringify({ ...QUAY_BODY, updated_tags: ["a".repeat(129)] }), /not a tag/],
    [
      JSON.stringify({
        ...QUAY_BODY,
        updated_tags: Array.from({ length: MAX_UPDATED_TAGS + 1 }, (_, i) => `t${i}`),
      }),
      /more than/,
    ],
    [JSON.stringify({ ...QUAY_BODY, name: "App!" }), /repository name/],
    [
      JSON.stringify({ message: "TEST NOTIFICATION", ...expected, repository: "openshift_team-a/app" }),
      /non-empty/,
    ],
  ];
  for (const [body, reason] of cases) {
    const parsed = parseRepoPush(body, expected);
    assert.equal(parsed.ok, false, body.slice(0, 80));
    if (!parsed.ok) assert.match(parsed.reason, reason);
  }
});

Deno.test("repository tokens: verified in constant time, bound to integration and repository", async () => {
  const secret = newSecret();
  assert.ok(isUsableSecret(secret));
  assert.equal(isUsableSecret("short"), false);
  assert.equal(isUsableSecret(undefined), false);
  assert.notEqual(newSecret(), secret);
  const token = repositoryToken(secret, "quay", "openshift_a", "app");
  assert.ok(await verifyRepositoryToken(secret, "quay", "openshift_a", "app", token));
  assert.equal(await verifyRepositoryToken(secret, "quay", "openshift_a", "other", token), false);
  assert.equal(await verifyRepositoryToken(secret, "quay", "openshift_b", "app", token), false);
  assert.equal(await verifyRepositoryToken(secret, "quay2", "openshift_a", "app", token), false);
  assert.equal(await verifyRepositoryToken(newSecret(), "quay", "openshift_a", "app", token), false);
  assert.equal(await verifyRepositoryToken(secret, "quay", "openshift_a", "app", ""), false);
  assert.equal(await verifyRepositoryToken(secret, "quay", "openshift_a", "app", token + "x"), false);
  assert.equal(
    await verifyRepositoryToken(secret, "quay", "openshift_a", "app", token.slice(1) + "A"),
    false,
  );
});

Deno.test("notification URLs round-trip through the receiver's path parser", () => {
  const secret = newSecret();
  const url = new URL(notificationUrl("https://qb.apps.example.com/", secret, "quay", "openshift_a", "app"));
  assert.equal(url.origin, "https://qb.apps.example.com");
  const parts = parseReceiverPath(url.pathname);
  assert.deepEqual(parts, {
    integration: "quay",
    org: "openshift_a",
    repo: "app",
    token: repositoryToken(secret, "quay", "openshift_a", "app"),
  });
  assert.equal(parseReceiverPath("/admissionwebhook"), undefined);
  assert.deepEqual(parseReceiverPath("/quay-notifications/quay/openshift_a/app"), {
    integration: "quay",
    org: "openshift_a",
    repo: "app",
    token: "",
  });
  assert.equal(parseReceiverPath("/quay-notifications/quay/openshift_a/app/")?.token, "");
  assert.equal(parseReceiverPath("/quay-notifications/quay/openshift_a"), undefined);
  assert.equal(parseReceiverPath("/quay-notifications/quay/openshift_a/app/t/extra"), undefined);
  assert.equal(parseReceiverPath("/quay-notifications/quay//app/t"), undefined);
  assert.equal(parseReceiverPath("/quay-notifications/%E0%A4%A/a/b/c"), undefined);
});

Deno.test("spec.notifications: off when absent, url checked, importAllTags boolean", () => {
  assert.deepEqual(parseNotificationSettings(undefined), { ok: true, settings: undefined });
  assert.deepEqual(parseNotificationSettings({ url: "https://qb.example.com:8443/" }), {
    ok: true,
    settings: { url: "https://qb.example.com:8443", importAllTags: false },
  });
  assert.deepEqual(parseNotificationSettings({ url: "http://127.0.0.2:9443", importAllTags: true }), {
    ok: true,
    settings: { url: "http://127.0.0.2:9443", importAllTags: true },
  });
  for (
    const [value, message] of [
      [{}, /url is required/],
      ["https://x", /must be an object/],
      [{ url: "ftp://x" }, /https/],
      [{ url: "https://x/prefix" }, /only scheme, host and port/],
      [{ url: "https://x?a=b" }, /only scheme, host and port/],
      [{ url: "https://localhost:8443" }, /refuses/],
      [{ url: "http://127.0.0.1:8443" }, /refuses/],
      [{ url: "not a url" }, /not a URL/],
      [{ url: "https://x", importAllTags: "yes" }, /importAllTags/],
    ] as const
  ) {
    const parsed = parseNotificationSettings(value);
    assert.equal(parsed.ok, false, JSON.stringify(value));
    if (!parsed.ok) assert.match(parsed.message, message);
  }
});

function n(uuid: string, url: string, extra: Partial<QuayNotification> = {}): QuayNotification {
  return {
    uuid,
    title: "quay-bridge:quay",
    event: "repo_push",
    method: "webhook",
    config: { url },
    event_config: {},
    number_of_failures: 0,
    ...extra,
  };
}

Deno.test("planRepository keeps exactly one of ours, at the wanted URL, and leaves others alone", () => {
  const title = "quay-bridge:quay";
  const theirs = n("t", "https://ci.example.com/hook", { title: "CI" });
  assert.deepEqual(planRepository([theirs], title, "https://u/1"), {
    delete: [],
    create: true,
    reset: undefined,
  });
  assert.deepEqual(planRepository([theirs, n("a", "https://u/1")], title, "https://u/1"), {
    delete: [],
    create: false,
    reset: undefined,
  });
  // URL changed: replace.
  assert.deepEqual(planRepository([n("a", "https://u/0")], title, "https://u/1"), {
    delete: ["a"],
    create: true,
    reset: undefined,
  });
  // Duplicates: keep one.
  assert.deepEqual(planRepository([n("a", "https://u/1"), n("b", "https://u/1")], title, "https://u/1"), {
    delete: ["b"],
    create: false,
    reset: undefined,
  });
  // Ours with a wrong event is not a keeper.
  assert.deepEqual(
    planRepository([n("a", "https://u/1", { event: "build_success" })], title, "https://u/1"),
    {
      delete: ["a"],
      create: true,
      reset: undefined,
    },
  );
  // Disabled by Quay after 3 failures: reset.
  assert.deepEqual(planRepository([n("a", "https://u/1", { number_of_failures: 3 })], title, "https://u/1"), {
    delete: [],
    create: false,
    reset: "a",
  });
  // Not wanted any more: delete ours only.
  assert.deepEqual(planRepository([theirs, n("a", "https://u/1")], title, undefined), {
    delete: ["a"],
    create: false,
    reset: undefined,
  });
  // Another integration's are not ours.
  assert.deepEqual(
    planRepository([n("x", "https://u/1", { title: "quay-bridge:other" })], title, undefined),
    {
      delete: [],
      create: false,
      reset: undefined,
    },
  );
});

Deno.test("tag keys round-trip; tracked tags come from spec and status", () => {
  const key = tagKey({ namespace: "team-a", imageStream: "app", tag: "v1.2" });
  assert.equal(key, "team-a/app:v1.2");
  assert.deepEqual(parseTagKey(key), { namespace: "team-a", imageStream: "app", tag: "v1.2" });
  assert.equal(parseTagKey("team-a/app"), undefined);
  assert.deepEqual(
    [
      ...trackedTags({
        metadata: {},
        spec: { tags: [{ name: "latest" }, { name: 3 }] },
        status: { tags: [{ tag: "v1" }, { tag: "latest" }] },
      }),
    ].sort(),
    ["latest", "v1"],
  );
  assert.deepEqual([...trackedTags({ metadata: {} })], []);
});

Deno.test("parseIntegration carries spec.notifications (v1 only) and reports a bad one", () => {
  const base = {
    metadata: { name: "quay" },
    spec: {
      quayHostname: "https://quay.example.com",
      credentialsSecret: { namespace: "quay-bridge", name: "quay-integration" },
    },
  };
  const on = parseIntegration({
    ...base,
    apiVersion: API_V1,
    spec: { ...base.spec, notifications: { url: "https://qb.example.com", importAllTags: true } },
  });
  assert.ok(on.ok);
  assert.deepEqual(on.integration.notifications, { url: "https://qb.example.com", importAllTags: true });
  const off = parseIntegration({ ...base, apiVersion: API_V1 });
  assert.ok(off.ok);
  assert.equal(off.integration.notifications, undefined);
  const bad = parseIntegration({
    ...base,
    apiVersion: API_V1,
    spec: { ...base.spec, notifications: { url: "https://qb.example.com/path" } },
  });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.deepEqual(bad.problems.map((p) => p.reason), ["InvalidNotifications"]);
});
