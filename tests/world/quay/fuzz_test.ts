/**
 * @module
 * Garbage in, a proper answer out: random methods, paths, queries, headers and bodies against the
 * Quay world never produce a 500 (an unexpected exception) or take it down.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { addPrototype, createOrg, createRepo, createRobot, withQuay } from "./testing.ts";

const SEGMENTS = [
  "api",
  "v1",
  "organization",
  "acme",
  "robots",
  "builder",
  "prototypes",
  "repository",
  "app",
  "tag",
  "permissions",
  "user",
  "acme+builder",
  "regenerate",
  "v2",
  "blobs",
  "uploads",
  "manifests",
  "tags",
  "list",
  "auth",
  "latest",
  `sha256:${"0".repeat(64)}`,
  "%",
  "%2F",
  "%ZZ",
  "..",
  "+",
  "",
  "_",
  "A",
];

const PARAM_VALUES: Record<string, readonly string[]> = {
  org: ["acme", "nosuch", "quayadmin"],
  repo: ["app", "none"],
  robot: ["builder", "ghost"],
  user: ["acme+builder", "quayadmin", "ghost"],
  id: ["x"],
  name: ["acme/app", "acme/none", "other/app"],
  digest: [`sha256:${"0".repeat(64)}`, "sha256:nothex"],
  uuid: ["00000000-0000-0000-0000-000000000000"],
  reference: ["latest", `sha256:${"0".repeat(64)}`, "bad tag"],
};

/** A path from a real route template, each parameter a known value or a random string. */
function templatedPath(template: string): fc.Arbitrary<string> {
  const parts = template.split(/(\{\w+\})/).map((part) => {
    const m = /^\{(\w+)\}$/.exec(part);
    if (!m?.[1]) return fc.constant(part);
    const known = PARAM_VALUES[m[1]] ?? ["x"];
    return fc.oneof(
      fc.constantFrom(...known),
      fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent),
    );
  });
  return fc.tuple(...parts).map((p) => p.join(""));
}

const randomPath = fc.tuple(
  fc.array(fc.oneof(fc.constantFrom(...SEGMENTS), fc.string({ maxLength: 8 })), { maxLength: 8 }),
  fc.boolean(),
).map(([segments, slash]) => "/" + segments.join("/") + (slash ? "/" : ""));

function requestArb(templates: string[]) {
  return fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"),
    path: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...templates).chain(templatedPath) },
      { weight: 1, arbitrary: randomPath },
    ),
    query: fc.array(
      fc.tuple(
        fc.constantFrom(
          "namespace",
          "next_page",
          "page",
          "limit",
          "onlyActiveTags",
          "token",
          "scope",
          "digest",
          "n",
          "last",
          "includeTags",
          "mount",
          "from",
          "x",
        ),
        fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.constantFrom("true", "-1", "99999999999999999999", "acme", "repository:acme/app:pull,push"),
        ),
      ),
      { maxLength: 3 },
    ),
    auth: fc.constantFrom("admin", "none", "Bearer junk", "Basic !!", "basic-robot", "Bearer"),
    contentType: fc.constantFrom(
      "application/json",
      "text/plain",
      "",
      "application/vnd.oci.image.manifest.v1+json",
    ),
    body: fc.oneof(
      fc.constant(undefined),
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 40 }),
      fc.jsonValue({ maxDepth: 2 }).map((v) =>
        JSON.stringify({
          role: v,
          delegate: v,
          name: v,
          repository: v,
          visibility: v,
          description: v,
          namespace: v,
        })
      ),
    ),
  });
}

Deno.test("quay world never answers 500 or falls over on random requests", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const robot = await createRobot(h, "acme", "builder");
    await addPrototype(h, "acme", robot.name, "write");
    await createRepo(h, "acme", "app");
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb(h.quay.routes().map((r) => r.slice(r.indexOf(" ") + 1))), async (req) => {
        const path = req.path;
        let url: URL;
        try {
          url = new URL(path, h.quay.url);
        } catch {
          return;
        }
        if (url.origin !== new URL(h.quay.url).origin) return;
        for (const [k, v] of req.query) url.searchParams.append(k, v);
        const headers = new Headers();
        if (req.auth === "admin") headers.set("authorization", `Bearer ${h.quay.adminToken}`);
        else if (req.auth === "basic-robot") {
          headers.set("authorization", `Basic ${btoa(`${robot.name}:${robot.token}`)}`);
        } else if (req.auth !== "none") headers.set("authorization", req.auth);
        if (req.contentType) headers.set("content-type", req.contentType);
        const canHaveBody = req.method !== "GET" && req.method !== "HEAD";
        const response = await fetch(url, {
          method: req.method,
          headers,
          body: canHaveBody ? req.body : undefined,
          client: h.client,
          redirect: "manual",
        });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(
          response.status >= 200 && response.status < 500 || response.status === 520,
          `${req.method} ${url.pathname}${url.search} -> ${response.status} ${text}`,
        );
      }),
      { numRuns: 300, seed: 424242 },
    );
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    assert.ok(statuses.size >= 5, `too few distinct answers: ${[...statuses.keys()]}`);
  });
});

Deno.test("quay world answers random JSON bodies on every write route with a 2xx or 4xx", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRobot(h, "acme", "builder");
    await createRepo(h, "acme", "app");
    const writes = [
      ["POST", "/api/v1/organization/"],
      ["PUT", "/api/v1/organization/acme/robots/r2"],
      ["POST", "/api/v1/organization/acme/prototypes"],
      ["PUT", "/api/v1/organization/acme/prototypes/x"],
      ["POST", "/api/v1/repository"],
      ["PUT", "/api/v1/repository/acme/app"],
      ["PUT", "/api/v1/repository/acme/app/permissions/user/acme+builder"],
    ] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...writes),
        fc.jsonValue({ maxDepth: 4 }),
        async ([method, path], value) => {
          const r = await h.call(method, path, { body: value });
          assert.ok(r.status < 500, `${method} ${path} ${JSON.stringify(value)} -> ${r.status} ${r.text}`);
          assert.ok(r.json !== undefined || r.status === 204, `${r.status} body is not JSON: ${r.text}`);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});
