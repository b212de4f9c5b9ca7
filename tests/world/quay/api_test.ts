/**
 * @module
 * The Quay world's REST API over HTTPS: status codes, error bodies, scopes and permissions, and the
 * exact request shapes the upstream bridge sends.
 */
import assert from "node:assert/strict";
import { addPrototype, createOrg, createRepo, createRobot, withQuay } from "./testing.ts";

type Json = Record<string, unknown>;

Deno.test("quay world answers GET /user/ with the token's user, superuser flag and organizations", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const r = await h.call("GET", "/api/v1/user/");
    assert.equal(r.status, 200);
    const body = r.json as Json;
    assert.equal(body.username, "quayadmin");
    assert.equal(body.super_user, true);
    assert.deepEqual((body.organizations as Json[]).map((o) => [o.name, o.is_org_admin]), [["acme", true]]);
  });
});

Deno.test("quay world treats a missing, unknown or revoked token as an anonymous caller, as Quay does", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRepo(h, "acme", "app");
    const token = h.quay.createToken({ user: "alice", scopes: ["user:read"] });
    assert.equal((await h.call("GET", "/api/v1/user/", { token })).status, 200);
    h.quay.revokeToken(token);
    for (const t of [null, "nope", token]) {
      // Reads: the public view of an organization, the public repositories (none here) …
      const org = await h.call("GET", "/api/v1/organization/acme", { token: t });
      assert.equal(org.status, 200);
      assert.equal((org.json as Json).is_admin, false);
      assert.equal((org.json as Json).email, "");
      const repos = await h.call("GET", "/api/v1/repository?namespace=acme", { token: t });
      assert.deepEqual([repos.status, repos.json], [200, { repositories: [] }]);
      // … writes meet the CSRF check …
      const write = await h.call("POST", "/api/v1/organization/", { token: t, body: { name: "x" } });
      assert.equal(write.status, 403);
      assert.equal(write.headers.get("content-type"), "text/html; charset=utf-8");
      assert.deepEqual(write.json, { error: "CSRF token was invalid or missing." });
      // … and what needs a user is 401.
      const r = await h.call("GET", "/api/v1/organization/acme/robots", { token: t });
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, {
        detail: "Requires authentication",
        error_message: "Requires authentication",
        error_type: "invalid_token",
        title: "invalid_token",
        type: `https://${h.quay.registryHost}/api/v1/error/invalid_token`,
        status: 401,
      });
    }
  });
});

Deno.test("quay world answers /user/ with 401 for a token without user:read, as Quay does", async () => {
  await withQuay({}, async (h) => {
    const token = h.quay.createToken({ user: "bob", scopes: ["org:admin"] });
    const r = await h.call("GET", "/api/v1/user/", { token });
    assert.equal(r.status, 401);
    assert.equal((r.json as Json).session_required, false);
  });
});

Deno.test("quay world answers 404 with a JSON error for an unknown org", async () => {
  await withQuay({}, async (h) => {
    const r = await h.call("GET", "/api/v1/organization/nosuchorg");
    assert.equal(r.status, 404);
    assert.equal((r.json as Json).error_type, "not_found");
    assert.equal((r.json as Json).detail, "Not Found");
    assert.equal((r.json as Json).status, 404);
  });
});

Deno.test('quay world creates an organization with the upstream bridge\'s request: 201 "Created", creator is admin', async () => {
  await withQuay({}, async (h) => {
    const r = await h.call("POST", "/api/v1/organization/", {
      body: { name: "openshift_demo", email: "openshift_demo@redhat.com" },
    });
    assert.equal(r.status, 201);
    assert.equal(r.json, "Created");
    const org = await h.call("GET", "/api/v1/organization/openshift_demo");
    assert.equal(org.status, 200);
    assert.equal((org.json as Json).is_admin, true);
    assert.equal((org.json as Json).email, "openshift_demo@redhat.com");
    const other = h.quay.createToken({ user: "carol", scopes: ["org:admin"] });
    const seen = await h.call("GET", "/api/v1/organization/openshift_demo", { token: other });
    assert.equal((seen.json as Json).is_admin, false);
    assert.equal((seen.json as Json).email, "");
  });
});

Deno.test("quay world redirects POST /organization without the trailing slash to /organization/ (308)", async () => {
  await withQuay({}, async (h) => {
    const r = await h.call("POST", "/api/v1/organization", { body: { name: "acme", email: "a@b.io" } });
    assert.equal(r.status, 308);
    assert.equal(r.headers.get("location"), "/api/v1/organization/");
  });
});

Deno.test("quay world refuses an organization name taken by a user or an organization", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    h.quay.createToken({ user: "dave", scopes: [] });
    for (const name of ["acme", "dave", "quayadmin"]) {
      const r = await h.call("POST", "/api/v1/organization/", { body: { name, email: `${name}-x@y.io` } });
      assert.equal(r.status, 400, name);
      assert.equal((r.json as Json).detail, "A user or organization with this name already exists");
      assert.equal((r.json as Json).error_type, "invalid_request");
    }
  });
});

Deno.test("quay world validates organization names and e-mail addresses with Quay's messages", async () => {
  await withQuay({}, async (h) => {
    const cases: [unknown, string][] = [
      [
        { name: "Bad_Name", email: "x@y.io" },
        "Invalid namespace Bad_Name: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
      ],
      [
        { name: "a", email: "x@y.io" },
        "Invalid namespace a: Namespace must be between 2 and 255 characters in length",
      ],
      [{ name: "good" }, "Email address is required"],
      [{ name: "good", email: "nope" }, "Invalid email address: nope"],
      [{ email: "x@y.io" }, "'name' is a required property"],
    ];
    for (const [body, message] of cases) {
      const r = await h.call("POST", "/api/v1/organization/", { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(String((r.json as Json).detail).split("\n")[0], message);
    }
    await createOrg(h, "first");
    const dup = await h.call("POST", "/api/v1/organization/", {
      body: { name: "second", email: "first@redhat.com" },
    });
    assert.equal(dup.status, 400);
    assert.equal((dup.json as Json).detail, "Email has already been used: first@redhat.com");
  });
});

Deno.test("quay world creates organizations without e-mail when it does not send mail", async () => {
  await withQuay({ requireOrgEmail: false }, async (h) => {
    const r = await h.call("POST", "/api/v1/organization/", { body: { name: "quiet" } });
    assert.equal(r.status, 201);
  });
});

Deno.test("quay world lets only super:user tokens create organizations when superuserOrgCreationOnly is set", async () => {
  await withQuay({ superuserOrgCreationOnly: true }, async (h) => {
    const user = h.quay.createToken({ user: "erin", scopes: ["user:admin", "org:admin"] });
    const superNoScope = h.quay.createToken({ user: "root2", superuser: true, scopes: ["user:admin"] });
    for (const token of [user, superNoScope]) {
      const r = await h.call("POST", "/api/v1/organization/", {
        token,
        body: { name: "x1", email: "x1@y.io" },
      });
      assert.equal(r.status, 403);
      assert.equal((r.json as Json).error_type, "insufficient_scope");
      assert.equal((r.json as Json).detail, "Unauthorized");
    }
    assert.equal(
      (await h.call("POST", "/api/v1/organization/", { body: { name: "x1", email: "x1@y.io" } })).status,
      201,
    );
  });
});

Deno.test("quay world requires user:admin to create an organization", async () => {
  await withQuay({}, async (h) => {
    const token = h.quay.createToken({ user: "frank", scopes: ["org:admin", "repo:create"] });
    const r = await h.call("POST", "/api/v1/organization/", {
      token,
      body: { name: "x2", email: "x2@y.io" },
    });
    assert.equal(r.status, 403);
    const ok = h.quay.createToken({ user: "frank", scopes: ["user:admin"] });
    assert.equal(
      (await h.call("POST", "/api/v1/organization/", { token: ok, body: { name: "x2", email: "x2@y.io" } }))
        .status,
      201,
    );
  });
});

Deno.test("quay world answers 403 Unauthorized to a user who does not administer the organization", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const token = h.quay.createToken({
      user: "mallory",
      scopes: ["org:admin", "repo:admin", "repo:create", "repo:read"],
    });
    const calls: [string, string, unknown?][] = [
      ["GET", "/api/v1/organization/acme/robots/builder"],
      ["PUT", "/api/v1/organization/acme/robots/builder"],
      ["GET", "/api/v1/organization/acme/robots"],
      ["GET", "/api/v1/organization/acme/prototypes"],
      ["DELETE", "/api/v1/organization/acme"],
      ["POST", "/api/v1/repository", {
        namespace: "acme",
        repository: "r",
        visibility: "private",
        description: "",
      }],
    ];
    for (const [method, path, body] of calls) {
      const r = await h.call(method, path, { token, body });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal((r.json as Json).detail, "Unauthorized");
      assert.equal((r.json as Json).error_type, "insufficient_scope");
    }
  });
});

Deno.test("quay world enforces scopes: an org admin's token without org:admin cannot manage robots", async () => {
  await withQuay({}, async (h) => {
    const owner = h.quay.createToken({ user: "olga", scopes: ["user:admin"] });
    await createOrg(h, "olgas", owner);
    const weak = h.quay.createToken({ user: "olga", scopes: ["repo:read", "repo:write", "repo:create"] });
    assert.equal((await h.call("PUT", "/api/v1/organization/olgas/robots/b1", { token: weak })).status, 403);
    assert.equal((await h.call("GET", "/api/v1/organization/olgas/prototypes", { token: weak })).status, 403);
    // repo:create lets her create repositories; repo:admin is needed to delete them.
    const created = await h.call("POST", "/api/v1/repository", {
      token: weak,
      body: { namespace: "olgas", repository: "r1", visibility: "private", description: "" },
    });
    assert.equal(created.status, 201);
    assert.equal((await h.call("DELETE", "/api/v1/repository/olgas/r1", { token: weak })).status, 403);
    const strong = h.quay.createToken({ user: "olga", scopes: ["org:admin", "repo:admin"] });
    assert.equal(
      (await h.call("PUT", "/api/v1/organization/olgas/robots/b1", { token: strong })).status,
      201,
    );
    assert.equal((await h.call("DELETE", "/api/v1/repository/olgas/r1", { token: strong })).status, 204);
  });
});

Deno.test("quay world deletes an organization with 204 and frees its name and e-mail at once", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "gone");
    await createRobot(h, "gone", "builder");
    await addPrototype(h, "gone", "gone+builder", "write");
    await createRepo(h, "gone", "app");
    assert.equal((await h.call("DELETE", "/api/v1/organization/gone")).status, 204);
    assert.equal((await h.call("GET", "/api/v1/organization/gone")).status, 404);
    assert.equal((await h.call("DELETE", "/api/v1/organization/gone")).status, 404);
    await createOrg(h, "gone");
    assert.equal((await h.call("GET", "/api/v1/organization/gone/robots/builder")).status, 400);
    assert.deepEqual((await h.call("GET", "/api/v1/organization/gone/prototypes")).json, { prototypes: [] });
    assert.equal((await h.call("GET", "/api/v1/repository/gone/app")).status, 404);
  });
});

Deno.test("quay world answers 400 with Quay's data-model message for an unknown robot", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const r = await h.call("GET", "/api/v1/organization/acme/robots/builder");
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { message: "Could not find robot with specified username" });
    const noOrg = await h.call("GET", "/api/v1/organization/nosuch/robots/builder");
    assert.equal(noOrg.status, 400);
    assert.deepEqual(noOrg.json, { message: "Organization does not exist: nosuch" });
  });
});

Deno.test("quay world creates a robot from a PUT without body or Content-Type, and 400s a second PUT", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const r = await h.call("PUT", "/api/v1/organization/acme/robots/builder");
    assert.equal(r.status, 201);
    const robot = r.json as Json;
    assert.equal(robot.name, "acme+builder");
    assert.match(String(robot.token), /^[A-Z0-9]{64}$/);
    assert.equal(robot.description, "");
    assert.equal(robot.unstructured_metadata, null);
    assert.equal(robot.last_accessed, null);
    assert.match(String(robot.created), /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000$/);
    const again = await h.call("PUT", "/api/v1/organization/acme/robots/builder", {
      body: { description: "builder robot" },
    });
    assert.equal(again.status, 400);
    assert.equal((again.json as Json).detail, "Existing robot with name: acme+builder");
    assert.equal((again.json as Json).error_message, "Existing robot with name: acme+builder");
    const got = await h.call("GET", "/api/v1/organization/acme/robots/builder");
    assert.equal(got.status, 200);
    assert.equal((got.json as Json).token, robot.token);
  });
});

Deno.test("quay world validates robot names and bodies", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    for (const short of ["Builder", "b", "a--b", "x_"]) {
      const r = await h.call("PUT", `/api/v1/organization/acme/robots/${short}`);
      assert.equal(r.status, 400, short);
      assert.match(
        String((r.json as Json).detail),
        new RegExp(`^The name for the robot '${short}' is invalid: Namespace must`),
      );
    }
    const long = await h.call("PUT", "/api/v1/organization/acme/robots/ok", {
      body: { description: "x".repeat(256) },
    });
    assert.equal(long.status, 400);
    assert.match(String((long.json as Json).detail), /is too long\n/);
    const meta = await h.call("PUT", "/api/v1/organization/acme/robots/ok", {
      body: { description: "d", unstructured_metadata: { k: "v" } },
    });
    assert.equal(meta.status, 201);
    assert.deepEqual((meta.json as Json).unstructured_metadata, { k: "v" });
  });
});

Deno.test("quay world lists robots with or without tokens and repository permissions", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRobot(h, "acme", "builder");
    await createRobot(h, "acme", "deployer");
    await addPrototype(h, "acme", "acme+builder", "write");
    await createRepo(h, "acme", "app");
    const plain = (await h.call("GET", "/api/v1/organization/acme/robots?token=false&permissions=false"))
      .json as {
        robots: Json[];
      };
    assert.deepEqual(plain.robots.map((r) => r.name).sort(), ["acme+builder", "acme+deployer"]);
    assert.ok(plain.robots.every((r) => !("token" in r) && !("repositories" in r)));
    const full = (await h.call("GET", "/api/v1/organization/acme/robots?permissions=true")).json as {
      robots: Json[];
    };
    const builder = full.robots.find((r) => r.name === "acme+builder");
    assert.match(String(builder?.token), /^[A-Z0-9]{64}$/);
    assert.deepEqual(builder?.repositories, ["app"]);
    assert.deepEqual(builder?.teams, []);
  });
});

Deno.test("quay world regenerates a robot token and deletes robots", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const robot = await createRobot(h, "acme", "builder");
    const r = await h.call("POST", "/api/v1/organization/acme/robots/builder/regenerate");
    assert.equal(r.status, 200);
    assert.notEqual((r.json as Json).token, robot.token);
    assert.equal(
      (await h.call("GET", "/api/v1/organization/acme/robots/builder")).json &&
        ((await h.call("GET", "/api/v1/organization/acme/robots/builder")).json as Json).token,
      (r.json as Json).token,
    );
    assert.equal((await h.call("DELETE", "/api/v1/organization/acme/robots/builder")).status, 204);
    const again = await h.call("DELETE", "/api/v1/organization/acme/robots/builder");
    assert.equal(again.status, 400);
    assert.deepEqual(again.json, { message: "Could not find robot with username: acme+builder" });
    const regen = await h.call("POST", "/api/v1/organization/acme/robots/builder/regenerate");
    assert.deepEqual(regen.json, { message: "Could not find robot with specified username" });
  });
});

Deno.test("quay world accepts the upstream prototype POST with its stray id and lists the prototype", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRobot(h, "acme", "builder");
    const r = await h.call("POST", "/api/v1/organization/acme/prototypes", {
      body: {
        id: "",
        role: "write",
        delegate: { kind: "user", name: "acme+builder", is_robot: true, is_org_member: true },
      },
    });
    assert.equal(r.status, 200);
    const p = r.json as Json;
    assert.match(String(p.id), /^[0-9a-f-]{36}$/);
    assert.equal(p.role, "write");
    assert.equal(p.activating_user, null);
    const delegate = p.delegate as Json;
    assert.equal(delegate.name, "acme+builder");
    assert.equal(delegate.kind, "user");
    assert.equal(delegate.is_robot, true);
    assert.equal(delegate.is_org_member, true);
    const list = (await h.call("GET", "/api/v1/organization/acme/prototypes")).json as { prototypes: Json[] };
    assert.deepEqual(list.prototypes.map((x) => x.id), [p.id]);
  });
});

Deno.test("quay world answers 400 for a prototype with an unknown delegate or activating user", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const unknown = await h.call("POST", "/api/v1/organization/acme/prototypes", {
      body: { role: "read", delegate: { kind: "user", name: "acme+ghost" } },
    });
    assert.equal(unknown.status, 400);
    assert.equal((unknown.json as Json).detail, "Missing delegate user or team");
    const activating = await h.call("POST", "/api/v1/organization/acme/prototypes", {
      body: {
        role: "read",
        activating_user: { name: "nobody" },
        delegate: { kind: "user", name: "quayadmin" },
      },
    });
    assert.equal((activating.json as Json).detail, "Unknown activating user");
    const badRole = await h.call("POST", "/api/v1/organization/acme/prototypes", {
      body: { role: "owner", delegate: { kind: "user", name: "quayadmin" } },
    });
    assert.equal(badRole.status, 400);
    assert.equal(
      String((badRole.json as Json).detail).split("\n")[0],
      "'owner' is not one of ['read', 'write', 'admin']",
    );
    assert.equal((await h.call("GET", "/api/v1/organization/nosuch/prototypes")).status, 404);
  });
});

Deno.test("quay world changes and deletes prototypes, 404 for an unknown id", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRobot(h, "acme", "builder");
    const id = await addPrototype(h, "acme", "acme+builder", "read");
    const changed = await h.call("PUT", `/api/v1/organization/acme/prototypes/${id}`, {
      body: { role: "admin" },
    });
    assert.equal(changed.status, 200);
    assert.equal((changed.json as Json).role, "admin");
    assert.equal(
      (await h.call("PUT", "/api/v1/organization/acme/prototypes/nope", { body: { role: "read" } })).status,
      404,
    );
    assert.equal((await h.call("DELETE", `/api/v1/organization/acme/prototypes/${id}`)).status, 204);
    assert.equal((await h.call("DELETE", `/api/v1/organization/acme/prototypes/${id}`)).status, 404);
  });
});

Deno.test("quay world creates repositories with 201 and Quay's validation messages", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const body = {
      namespace: "acme",
      visibility: "private",
      repository: "app",
      description: "",
      repo_kind: "image",
    };
    const r = await h.call("POST", "/api/v1/repository", { body });
    assert.equal(r.status, 201);
    assert.deepEqual(r.json, { namespace: "acme", name: "app", kind: "image" });
    const dup = await h.call("POST", "/api/v1/repository", { body });
    assert.equal(dup.status, 400);
    assert.equal((dup.json as Json).detail, "Repository already exists");
    for (const name of ["App", "-x", "a/b", "x".repeat(256)]) {
      const bad = await h.call("POST", "/api/v1/repository", { body: { ...body, repository: name } });
      assert.equal(bad.status, 400, name);
      assert.equal((bad.json as Json).detail, "Invalid repository name");
    }
    const missing = await h.call("POST", "/api/v1/repository", {
      body: { namespace: "acme", repository: "x", visibility: "private" },
    });
    assert.equal(
      String((missing.json as Json).detail).split("\n")[0],
      "'description' is a required property",
    );
    const noBody = await h.call("POST", "/api/v1/repository", { rawBody: "namespace=acme" });
    assert.equal((noBody.json as Json).detail, "Missing JSON body");
    const broken = await h.call("POST", "/api/v1/repository", {
      rawBody: "{",
      headers: { "content-type": "application/json" },
    });
    assert.equal(broken.status, 400);
    assert.match(String((broken.json as Json).message), /^Failed to decode JSON object/);
  });
});

Deno.test("quay world answers GET repository with tags on request, 404 when absent, 403 when unreadable", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRepo(h, "acme", "app");
    const r = await h.call("GET", "/api/v1/repository/acme/app");
    assert.equal(r.status, 200);
    const repo = r.json as Json;
    assert.equal(repo.namespace, "acme");
    assert.equal(repo.is_public, false);
    assert.equal(repo.can_write, true);
    assert.equal(repo.can_admin, true);
    assert.deepEqual(repo.tags, {});
    assert.ok(
      !("tags" in ((await h.call("GET", "/api/v1/repository/acme/app?includeTags=false")).json as Json)),
    );
    const absent = await h.call("GET", "/api/v1/repository/acme/nothere");
    assert.equal(absent.status, 404);
    assert.equal((absent.json as Json).detail, "Not Found");
    const stranger = h.quay.createToken({ user: "sam", scopes: ["repo:read"] });
    assert.equal((await h.call("GET", "/api/v1/repository/acme/app", { token: stranger })).status, 403);
    assert.equal((await h.call("GET", "/api/v1/repository/acme/nothere", { token: stranger })).status, 403);
  });
});

Deno.test("quay world lists repositories by namespace with next_page pagination", async () => {
  await withQuay({ repositoryPageSize: 2 }, async (h) => {
    await createOrg(h, "acme");
    for (const name of ["a1", "a2", "a3", "a4", "a5"]) await createRepo(h, "acme", name);
    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const r = await h.call(
        "GET",
        `/api/v1/repository?namespace=acme${next ? `&next_page=${encodeURIComponent(next)}` : ""}`,
      );
      assert.equal(r.status, 200);
      const body = r.json as { repositories: Json[]; next_page?: string };
      assert.ok(body.repositories.length <= 2);
      seen.push(...body.repositories.map((x) => String(x.name)));
      next = body.next_page;
      pages++;
    } while (next);
    assert.deepEqual(seen, ["a1", "a2", "a3", "a4", "a5"]);
    assert.equal(pages, 3);
    const required = await h.call("GET", "/api/v1/repository");
    assert.equal(required.status, 400);
    assert.equal(
      (required.json as Json).detail,
      "namespace, starred or public are required for this API call",
    );
    const empty = await h.call("GET", "/api/v1/repository?namespace=nosuch");
    assert.deepEqual(empty.json, { repositories: [] });
  });
});

Deno.test("quay world deletes repositories with 204 and frees the name", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRepo(h, "acme", "app");
    assert.equal((await h.call("DELETE", "/api/v1/repository/acme/app")).status, 204);
    // Quay does not look before it deletes: gone is 204 again.
    assert.equal((await h.call("DELETE", "/api/v1/repository/acme/app")).status, 204);
    await createRepo(h, "acme", "app");
  });
});

Deno.test("quay world applies only the prototypes that exist when a repository is created", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createRobot(h, "acme", "builder");
    await createRepo(h, "acme", "early");
    await addPrototype(h, "acme", "acme+builder", "write");
    await createRepo(h, "acme", "late");
    const early = await h.call("GET", "/api/v1/repository/acme/early/permissions/user/acme+builder");
    assert.equal(early.status, 400);
    assert.deepEqual(early.json, { message: "User does not have permission for repo." });
    const late = await h.call("GET", "/api/v1/repository/acme/late/permissions/user/acme+builder");
    assert.equal(late.status, 200);
    assert.equal((late.json as Json).role, "write");
    assert.equal((late.json as Json).is_robot, true);
    const creator = await h.call("GET", "/api/v1/repository/acme/late/permissions/user/quayadmin");
    assert.equal((creator.json as Json).role, "admin");
  });
});

Deno.test("quay world sets, reads and removes repository user permissions", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await createOrg(h, "other");
    await createRobot(h, "acme", "builder");
    await createRobot(h, "other", "builder");
    await createRepo(h, "acme", "app");
    const set = await h.call("PUT", "/api/v1/repository/acme/app/permissions/user/acme+builder", {
      body: { role: "write" },
    });
    assert.equal(set.status, 200);
    assert.deepEqual(
      { ...(set.json as Json), avatar: undefined },
      { role: "write", name: "acme+builder", is_robot: true, avatar: undefined, is_org_member: true },
    );
    const list = (await h.call("GET", "/api/v1/repository/acme/app/permissions/user/")).json as {
      permissions: Json;
    };
    assert.deepEqual(Object.keys(list.permissions).sort(), ["acme+builder", "quayadmin"]);
    const foreign = await h.call("PUT", "/api/v1/repository/acme/app/permissions/user/other+builder", {
      body: { role: "read" },
    });
    assert.equal(foreign.status, 400);
    assert.equal((foreign.json as Json).detail, "Cannot add robot other+builder under namespace acme");
    const unknown = await h.call("PUT", "/api/v1/repository/acme/app/permissions/user/ghost", {
      body: { role: "read" },
    });
    assert.equal((unknown.json as Json).detail, "Invalid username: ghost");
    assert.equal(
      (await h.call("DELETE", "/api/v1/repository/acme/app/permissions/user/acme+builder")).status,
      204,
    );
    const gone = await h.call("DELETE", "/api/v1/repository/acme/app/permissions/user/acme+builder");
    assert.equal(gone.status, 400);
    assert.equal((gone.json as Json).detail, "User does not have permission for repo.");
    assert.equal(
      (await h.call("PUT", "/api/v1/repository/acme/none/permissions/user/acme+builder", {
        body: { role: "read" },
      })).status,
      500,
    );
  });
});

Deno.test("quay world answers unknown API paths with a JSON 404 and wrong methods with 405", async () => {
  await withQuay({}, async (h) => {
    const r = await h.call("GET", "/api/v1/nothing/here");
    assert.equal(r.status, 404);
    assert.equal((r.json as Json).error_type, "not_found");
    const m = await h.call("PATCH", "/api/v1/organization/acme");
    assert.equal(m.status, 405);
    assert.ok(typeof (m.json as Json).message === "string");
  });
});

Deno.test("quay world answers HEAD on GET routes with the GET's status and no body", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    const found = await h.call("HEAD", "/api/v1/organization/acme");
    assert.equal(found.status, 200);
    assert.equal(found.text, "");
    assert.equal((await h.call("HEAD", "/api/v1/organization/nosuch")).status, 404);
  });
});

Deno.test("quay world holds a deleted organization's name until its namespace GC has run", async () => {
  await withQuay({ namespaceGcDelayMs: 300 }, async (h) => {
    await createOrg(h, "acme");
    assert.equal((await h.call("DELETE", "/api/v1/organization/acme")).status, 204);
    const early = await h.call("POST", "/api/v1/organization/", {
      body: { name: "acme", email: "acme@example.com" },
    });
    assert.equal(early.status, 400);
    assert.equal((early.json as Json).detail, "Username is not available");
    await new Promise((resolve) => setTimeout(resolve, 350));
    await createOrg(h, "acme");
  });
});

Deno.test("quay world refuses a robot whose full name is beyond the database's 255 characters", async () => {
  await withQuay({}, async (h) => {
    const org = "o".repeat(200);
    await createOrg(h, org);
    const r = await h.call("PUT", `/api/v1/organization/${org}/robots/${"r".repeat(60)}`, { body: {} });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { message: "value too long for type character varying(255)\n" });
  });
});
