/**
 * @module
 * The Quay world's registry over HTTPS: the token dance, robot permissions through prototypes and
 * explicit grants, blob and manifest rules, and tags showing up in the REST API.
 */
import assert from "node:assert/strict";
import { pullManifest, pushImage, RegistryClientError } from "./registry_client.ts";
import { addPrototype, createOrg, createRepo, createRobot, type Harness, withQuay } from "./testing.ts";

type Json = Record<string, unknown>;

function basic(username: string, password: string): string {
  return `Basic ${btoa(`${username}:${password}`)}`;
}

async function registryToken(
  h: Harness,
  scope: string,
  auth?: string,
): Promise<{ status: number; token?: string; body: Json }> {
  const r = await h.call(
    "GET",
    `/v2/auth?service=${h.quay.registryHost}&scope=${encodeURIComponent(scope)}`,
    {
      token: null,
      headers: auth ? { authorization: auth } : {},
    },
  );
  const body = (r.json ?? {}) as Json;
  return { status: r.status, token: body.token as string | undefined, body };
}

async function rejects(promise: Promise<unknown>, status: number, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof RegistryClientError, String(error));
    assert.equal(error.status, status, error.message);
    assert.deepEqual(error.codes, [code], error.message);
    return true;
  });
}

/** An org with builder (write) and default (read) robots from prototypes, and one repository. */
async function bridgeSetup(h: Harness, org: string) {
  await createOrg(h, org);
  const builder = await createRobot(h, org, "builder");
  const reader = await createRobot(h, org, "default");
  await addPrototype(h, org, builder.name, "write");
  await addPrototype(h, org, reader.name, "read");
  await createRepo(h, org, "app");
  const target = (robot: { name: string; token: string }) => ({
    registryUrl: h.quay.url,
    caPem: h.quay.caPem,
    client: h.client,
    repository: `${org}/app`,
    username: robot.name,
    password: robot.token,
  });
  return { builder, reader, target };
}

Deno.test("quay world registry challenges GET /v2/ with the bearer realm and accepts a token", async () => {
  await withQuay({}, async (h) => {
    const r = await h.call("GET", "/v2/", { token: null });
    assert.equal(r.status, 401);
    assert.equal(
      r.headers.get("www-authenticate"),
      `Bearer realm="https://${h.quay.registryHost}/v2/auth",service="${h.quay.registryHost}"`,
    );
    assert.equal(r.headers.get("docker-distribution-api-version"), "registry/2.0");
    const login = await registryToken(h, "", basic("$oauthtoken", h.quay.adminToken));
    assert.equal(login.status, 200);
    const ok = await h.call("GET", "/v2/", { token: login.token });
    assert.equal(ok.status, 200);
  });
});

Deno.test("quay world registry answers 401 UNAUTHORIZED for bad credentials", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const robot = await createRobot(h, "acme", "builder");
    const cases: [string, string][] = [
      [
        basic(robot.name, "wrong"),
        `Could not find robot with username: ${robot.name} and supplied password.`,
      ],
      [basic("acme+ghost", "x"), "Could not find robot with specified username"],
      [basic("$oauthtoken", "nope"), "OAuth access token could not be validated"],
      [basic("someone", "pw"), "Invalid Username or Password"],
      ["Basic !!!", "Invalid Username or Password"],
    ];
    for (const [auth, message] of cases) {
      const r = await registryToken(h, "repository:acme/app:pull", auth);
      assert.equal(r.status, 401, auth);
      assert.deepEqual(r.body, { errors: [{ code: "UNAUTHORIZED", message, detail: {} }] });
    }
    const malformed = await registryToken(h, "repository:acme/app:fly", basic(robot.name, robot.token));
    assert.equal(malformed.status, 400);
    assert.equal((malformed.body.errors as Json[])[0]?.code, "INVALID_REQUEST");
  });
});

Deno.test("quay world lets a builder robot with write push and pull", async () => {
  await withQuay({}, async (h) => {
    const { builder, target } = await bridgeSetup(h, "acme");
    const pushed = await pushImage({ ...target(builder), tag: "v1" });
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
    const pulled = await pullManifest({ ...target(builder), reference: "v1" });
    assert.equal(pulled.digest, pushed.digest);
    assert.equal(pulled.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assert.equal((pulled.config?.rootfs as Json).type, "layers");
    const byDigest = await pullManifest({ ...target(builder), reference: pushed.digest });
    assert.equal(byDigest.digest, pushed.digest);
  });
});

Deno.test("quay world logs push_repo and pull_repo; aggregatelogs counts them per kind and day, for super-users only", async () => {
  await withQuay({}, async (h) => {
    const { builder, target } = await bridgeSetup(h, "acme");
    const day = new Date().toISOString().slice(0, 10).split("-");
    const range = `starttime=${day[1]}/${day[2]}/${day[0]}&endtime=${day[1]}/${day[2]}/${day[0]}`;
    const counts = async () => {
      const r = await h.call("GET", `/api/v1/superuser/aggregatelogs?${range}`);
      assert.equal(r.status, 200);
      const aggregated =
        (r.json as { aggregated: { kind: string; count: number; datetime: string }[] }).aggregated;
      for (const c of aggregated) assert.match(c.datetime, / 00:00:00 -0000$/);
      return Object.fromEntries(aggregated.map((c) => [c.kind, c.count]));
    };
    const before = await counts();
    assert.equal(before.org_create, 1);
    assert.equal(before.create_robot, 2);
    assert.equal(before.push_repo, undefined);
    const pushed = await pushImage({ ...target(builder), tag: "v1" });
    await pullManifest({ ...target(builder), reference: "v1" });
    await pullManifest({ ...target(builder), reference: pushed.digest });
    const after = await counts();
    assert.equal(after.push_repo, 1);
    assert.equal(after.pull_repo, 2);
    const logs = await h.call("GET", `/api/v1/superuser/logs?${range}`);
    const entries = (logs.json as { logs: { kind: string; metadata: Json }[] }).logs;
    assert.deepEqual(entries.slice(0, 3).map((e) => [e.kind, e.metadata]), [
      ["pull_repo", { repo: "app", namespace: "acme", manifest_digest: pushed.digest }],
      ["pull_repo", { repo: "app", namespace: "acme", tag: "v1" }],
      ["push_repo", { repo: "app", namespace: "acme", tag: "v1" }],
    ]);
    const developer = h.quay.createToken({
      user: "developer",
      scopes: ["repo:read", "org:admin", "user:read"],
    });
    const denied = await h.call("GET", `/api/v1/superuser/aggregatelogs?${range}`, { token: developer });
    assert.equal(denied.status, 403);
  });
});

Deno.test("quay world lets a read robot pull but not push", async () => {
  await withQuay({}, async (h) => {
    const { builder, reader, target } = await bridgeSetup(h, "acme");
    const pushed = await pushImage({ ...target(builder), tag: "v1" });
    const pulled = await pullManifest({ ...target(reader), reference: "v1" });
    assert.equal(pulled.digest, pushed.digest);
    const grant = await registryToken(h, "repository:acme/app:pull,push", basic(reader.name, reader.token));
    assert.equal(grant.status, 200);
    await rejects(pushImage({ ...target(reader), tag: "v2" }), 401, "UNAUTHORIZED");
    const upload = await h.call("POST", "/v2/acme/app/blobs/uploads/", { token: grant.token });
    assert.equal(upload.status, 401);
    assert.equal(
      upload.headers.get("www-authenticate"),
      `Bearer realm="https://${h.quay.registryHost}/v2/auth",service="${h.quay.registryHost}",scope="repository:acme/app:pull,push"`,
    );
  });
});

Deno.test("quay world lets a robot of another organization neither pull nor push", async () => {
  await withQuay({}, async (h) => {
    const { builder, target } = await bridgeSetup(h, "acme");
    await pushImage({ ...target(builder), tag: "v1" });
    await createOrg(h, "other");
    const stranger = await createRobot(h, "other", "builder");
    await rejects(pullManifest({ ...target(stranger), reference: "v1" }), 401, "UNAUTHORIZED");
    await rejects(pushImage({ ...target(stranger), tag: "v2" }), 401, "UNAUTHORIZED");
  });
});

Deno.test("quay world grants nothing from prototypes made after a repository, but honours an explicit permission", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const builder = await createRobot(h, "acme", "builder");
    await createRepo(h, "acme", "old");
    await addPrototype(h, "acme", builder.name, "write");
    const target = {
      registryUrl: h.quay.url,
      caPem: h.quay.caPem,
      repository: "acme/old",
      username: builder.name,
      password: builder.token,
    };
    await rejects(pushImage({ ...target, tag: "v1" }), 401, "UNAUTHORIZED");
    const grant = await h.call("PUT", `/api/v1/repository/acme/old/permissions/user/${builder.name}`, {
      body: { role: "write" },
    });
    assert.equal(grant.status, 200);
    const pushed = await pushImage({ ...target, tag: "v1" });
    assert.equal((await pullManifest({ ...target, reference: "v1" })).digest, pushed.digest);
  });
});

Deno.test("quay world denies robots a push to a repository that does not exist", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const builder = await createRobot(h, "acme", "builder");
    await addPrototype(h, "acme", builder.name, "write");
    const grant = await registryToken(
      h,
      "repository:acme/missing:pull,push",
      basic(builder.name, builder.token),
    );
    assert.equal(grant.status, 200);
    await rejects(
      pushImage({
        registryUrl: h.quay.url,
        caPem: h.quay.caPem,
        repository: "acme/missing",
        tag: "v1",
        username: builder.name,
        password: builder.token,
      }),
      401,
      "UNAUTHORIZED",
    );
    assert.equal((await h.call("GET", "/api/v1/repository/acme/missing")).status, 404);
  });
});

Deno.test("quay world creates a repository on push for a user allowed to create repositories", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const pushed = await pushImage({
      registryUrl: h.quay.url,
      caPem: h.quay.caPem,
      repository: "acme/fresh",
      tag: "latest",
      username: "$oauthtoken",
      password: h.quay.adminToken,
      format: "docker",
    });
    const repo = await h.call("GET", "/api/v1/repository/acme/fresh");
    assert.equal(repo.status, 200);
    const tags = (repo.json as Json).tags as Record<string, Json>;
    assert.equal(tags.latest?.manifest_digest, pushed.digest);
    const pulled = await pullManifest({
      registryUrl: h.quay.url,
      caPem: h.quay.caPem,
      repository: "acme/fresh",
      reference: "latest",
      username: "$oauthtoken",
      password: h.quay.adminToken,
    });
    assert.equal(pulled.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  });
});

Deno.test("quay world lists pushed tags in the REST API with manifest_digest, history and pagination", async () => {
  await withQuay({}, async (h) => {
    const { builder, target } = await bridgeSetup(h, "acme");
    const created = new Date("2024-01-01T00:00:00Z");
    const first = await pushImage({ ...target(builder), tag: "latest", content: "one", created });
    const second = await pushImage({ ...target(builder), tag: "latest", content: "two", created });
    const again = await pushImage({ ...target(builder), tag: "v1", content: "one", created });
    assert.equal(again.digest, first.digest);
    const active =
      (await h.call("GET", "/api/v1/repository/acme/app/tag/?onlyActiveTags=true&limit=10&page=1")).json as {
        tags: Json[];
        page: number;
        has_additional: boolean;
      };
    assert.deepEqual(active.tags.map((t) => t.name).sort(), ["latest", "v1"]);
    assert.equal(active.tags.find((t) => t.name === "latest")?.manifest_digest, second.digest);
    assert.equal(active.tags.find((t) => t.name === "v1")?.manifest_digest, first.digest);
    assert.equal(active.has_additional, false);
    const all = (await h.call("GET", "/api/v1/repository/acme/app/tag/")).json as { tags: Json[] };
    const dead = all.tags.filter((t) => "end_ts" in t);
    assert.deepEqual(dead.map((t) => [t.name, t.manifest_digest]), [["latest", first.digest]]);
    const paged = (await h.call("GET", "/api/v1/repository/acme/app/tag/?onlyActiveTags=true&limit=1&page=1"))
      .json as {
        tags: Json[];
        has_additional: boolean;
      };
    assert.equal(paged.tags.length, 1);
    assert.equal(paged.has_additional, true);
    const list = await registryToken(h, "repository:acme/app:pull", basic(builder.name, builder.token));
    const tags = await h.call("GET", "/v2/acme/app/tags/list", { token: list.token });
    assert.deepEqual(tags.json, { name: "acme/app", tags: ["latest", "v1"] });
    const page = await h.call("GET", "/v2/acme/app/tags/list?n=1", { token: list.token });
    assert.deepEqual((page.json as Json).tags, ["latest"]);
    assert.match(page.headers.get("link") ?? "", /last=latest>; rel="next"$/);
  });
});

Deno.test("quay world registry refuses manifests with missing blobs, wrong digests and unknown references", async () => {
  await withQuay({}, async (h) => {
    const { builder } = await bridgeSetup(h, "acme");
    const grant = await registryToken(h, "repository:acme/app:pull,push", basic(builder.name, builder.token));
    const token = grant.token;
    const missing = "sha256:" + "0".repeat(64);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: missing, size: 2 },
      layers: [],
    });
    const put = await h.call("PUT", "/v2/acme/app/manifests/v1", {
      token,
      rawBody: manifest,
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    });
    assert.equal(put.status, 400);
    assert.deepEqual((put.json as { errors: Json[] }).errors[0], {
      code: "MANIFEST_INVALID",
      message: "manifest invalid",
      detail: { message: `Missing referenced blob: ${missing}` },
    });
    const garbage = await h.call("PUT", "/v2/acme/app/manifests/v1", { token, rawBody: "{nope" });
    assert.equal((garbage.json as { errors: Json[] }).errors[0]?.code, "MANIFEST_INVALID");
    const unknown = await h.call("GET", "/v2/acme/app/manifests/nope", { token });
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json as { errors: Json[] }).errors[0]?.code, "MANIFEST_UNKNOWN");
    const blob = await h.call("GET", `/v2/acme/app/blobs/${missing}`, { token });
    assert.equal(blob.status, 404);
    assert.equal((blob.json as { errors: Json[] }).errors[0]?.code, "BLOB_UNKNOWN");
    const start = await h.call("POST", "/v2/acme/app/blobs/uploads/", { token });
    assert.equal(start.status, 202);
    const wrong = await h.call("PUT", `${start.headers.get("location")}?digest=${missing}`, {
      token,
      rawBody: "hello",
    });
    assert.equal(wrong.status, 400);
    assert.equal((wrong.json as { errors: Json[] }).errors[0]?.code, "DIGEST_INVALID");
    const noRepo = await registryToken(
      h,
      "repository:acme/app:pull",
      basic("$oauthtoken", h.quay.adminToken),
    );
    await h.call("DELETE", "/api/v1/repository/acme/app");
    const gone = await h.call("GET", "/v2/acme/app/tags/list", { token: noRepo.token });
    assert.equal(gone.status, 404);
    assert.equal((gone.json as { errors: Json[] }).errors[0]?.code, "NAME_UNKNOWN");
  });
});

Deno.test("quay world registry takes chunked uploads, cross-repository mounts and HEAD requests", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRepo(h, "acme", "one");
    await createRepo(h, "acme", "two");
    const grant = await registryToken(
      h,
      "repository:acme/one:pull,push",
      basic("$oauthtoken", h.quay.adminToken),
    );
    const token = grant.token;
    const data = new TextEncoder().encode("hello, chunked world");
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const digest = "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
    const start = await h.call("POST", "/v2/acme/one/blobs/uploads/", { token });
    const location = start.headers.get("location") ?? "";
    const part1 = await h.call("PATCH", location, { token, rawBody: "hello, " });
    assert.equal(part1.status, 202);
    assert.equal(part1.headers.get("range"), "0-6");
    const done = await h.call("PUT", `${location}?digest=${digest}`, { token, rawBody: "chunked world" });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get("docker-content-digest"), digest);
    const head = await h.call("HEAD", `/v2/acme/one/blobs/${digest}`, { token });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(data.byteLength));
    assert.equal(head.text, "");
    const both = await registryToken(
      h,
      "repository:acme/two:pull,push repository:acme/one:pull",
      basic("$oauthtoken", h.quay.adminToken),
    );
    const mount = await h.call("POST", `/v2/acme/two/blobs/uploads/?mount=${digest}&from=acme/one`, {
      token: both.token,
    });
    assert.equal(mount.status, 201);
    assert.equal(mount.headers.get("location"), `/v2/acme/two/blobs/${digest}`);
    const got = await h.call("GET", `/v2/acme/two/blobs/${digest}`, { token: both.token });
    assert.equal(got.text, "hello, chunked world");
  });
});

Deno.test("quay world registry serves public repositories to anonymous pulls", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const r = await h.call("POST", "/api/v1/repository", {
      body: { namespace: "acme", repository: "pub", visibility: "public", description: "" },
    });
    assert.equal(r.status, 201);
    await pushImage({
      registryUrl: h.quay.url,
      caPem: h.quay.caPem,
      repository: "acme/pub",
      tag: "v1",
      username: "$oauthtoken",
      password: h.quay.adminToken,
    });
    const pulled = await pullManifest({
      registryUrl: h.quay.url,
      caPem: h.quay.caPem,
      repository: "acme/pub",
      reference: "v1",
    });
    assert.match(pulled.digest, /^sha256:/);
  });
});

Deno.test("quay world regenerating a robot token invalidates the old one for registry logins", async () => {
  await withQuay({}, async (h) => {
    const { builder } = await bridgeSetup(h, "acme");
    await h.call("POST", "/api/v1/organization/acme/robots/builder/regenerate");
    const old = await registryToken(h, "repository:acme/app:pull", basic(builder.name, builder.token));
    assert.equal(old.status, 401);
  });
});
