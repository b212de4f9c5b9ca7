/**
 * The extension points for OpenShift behaviour: virtual creates for `imagestreamimports` and
 * `buildconfigs/{name}/instantiate`, answered by handlers that talk to the world over HTTP.
 */
import assert from "node:assert/strict";
import { conflict, notFound } from "./mod.ts";
import { withWorld } from "./test_helpers.ts";

const IMAGE = "/apis/image.openshift.io/v1/namespaces/default";
const BUILD = "/apis/build.openshift.io/v1/namespaces/default";

Deno.test("an imagestreamimports handler computes the answer, may refuse with a Status, and stores nothing", async () => {
  await withWorld({}, async ({ world, request }) => {
    const refused = await request("POST", `${IMAGE}/imagestreamimports`, {
      body: { metadata: { name: "app" }, spec: { import: true } },
    });
    assert.equal(refused.status, 503, "without a handler the resource is unavailable");
    assert.equal(refused.body.kind, "Status");

    const calls: string[] = [];
    const off = world.hooks.onVirtualCreate(
      { group: "image.openshift.io", resource: "imagestreamimports" },
      async (req) => {
        calls.push(`${req.namespace}/${req.name} by ${req.user.username}${req.dryRun ? " (dry)" : ""}`);
        // Behaviour code reads the world over HTTP, as it would read a real cluster.
        const http = Deno.createHttpClient({ caCerts: [world.caPem] });
        try {
          const response = await fetch(`${world.url}${IMAGE}/imagestreams/${req.name}`, {
            headers: { authorization: `Bearer ${world.adminToken}` },
            client: http,
          });
          const stream = await response.json();
          if (response.status === 404) {
            throw notFound({ resource: "imagestreams", group: "image.openshift.io" }, req.name);
          }
          const wanted = (req.body.metadata as { resourceVersion?: string }).resourceVersion;
          if (wanted && wanted !== stream.metadata.resourceVersion) {
            throw conflict({ resource: "imagestreams", group: "image.openshift.io" }, req.name);
          }
          return {
            metadata: { name: req.name, namespace: req.namespace },
            spec: req.body.spec,
            status: { import: { metadata: { name: req.name } } },
          };
        } finally {
          http.close();
        }
      },
    );
    const missing = await request("POST", `${IMAGE}/imagestreamimports`, {
      body: { metadata: { name: "app" }, spec: { import: true } },
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'imagestreams.image.openshift.io "app" not found');

    const stream = await request("POST", `${IMAGE}/imagestreams`, { body: { metadata: { name: "app" } } });
    const ok = await request("POST", `${IMAGE}/imagestreamimports`, {
      body: {
        apiVersion: "image.openshift.io/v1",
        kind: "ImageStreamImport",
        metadata: { name: "app", resourceVersion: stream.body.metadata.resourceVersion },
        spec: { import: true },
      },
    });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.kind, "ImageStreamImport");
    assert.equal(ok.body.apiVersion, "image.openshift.io/v1");
    assert.equal(ok.body.status.import.metadata.name, "app");
    const stale = await request("POST", `${IMAGE}/imagestreamimports?dryRun=All`, {
      body: { metadata: { name: "app", resourceVersion: "1" }, spec: { import: true } },
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, "Conflict");
    assert.deepEqual(calls, [
      "default/app by system:admin",
      "default/app by system:admin",
      "default/app by system:admin (dry)",
    ]);
    assert.equal(
      (await request("GET", `${IMAGE}/imagestreamimports`)).status,
      405,
      "nothing is stored or listed",
    );
    off();
    assert.equal(
      (await request("POST", `${IMAGE}/imagestreamimports`, { body: { metadata: { name: "app" } } })).status,
      503,
    );
  });
});

Deno.test("a buildconfigs/instantiate handler runs for an existing BuildConfig after RBAC, and can create a Build over HTTP", async () => {
  await withWorld({ tokens: { "viewer-token": { user: "viewer" } } }, async ({ world, request }) => {
    world.hooks.onVirtualCreate({
      group: "build.openshift.io",
      resource: "buildconfigs",
      subresource: "instantiate",
    }, async (req) => {
      const http = Deno.createHttpClient({ caCerts: [world.caPem] });
      try {
        const response = await fetch(`${world.url}${BUILD}/builds`, {
          method: "POST",
          headers: { authorization: `Bearer ${world.adminToken}`, "content-type": "application/json" },
          body: JSON.stringify({
            metadata: { name: `${req.name}-1`, labels: { buildconfig: req.name } },
            spec: { strategy: { type: "Docker" } },
          }),
          client: http,
        });
        return await response.json();
      } finally {
        http.close();
      }
    });
    const absent = await request("POST", `${BUILD}/buildconfigs/app/instantiate`, {
      body: { kind: "BuildRequest", metadata: { name: "app" } },
    });
    assert.equal(absent.status, 404);
    assert.equal(absent.body.message, 'buildconfigs.build.openshift.io "app" not found');
    await request("POST", `${BUILD}/buildconfigs`, {
      body: { metadata: { name: "app" }, spec: { strategy: { type: "Docker" } } },
    });
    const build = await request("POST", `${BUILD}/buildconfigs/app/instantiate`, {
      body: { kind: "BuildRequest", apiVersion: "build.openshift.io/v1", metadata: { name: "app" } },
    });
    assert.equal(build.status, 201);
    assert.equal(build.body.kind, "Build");
    assert.equal(build.body.metadata.name, "app-1");
    assert.equal((await request("GET", `${BUILD}/builds/app-1`)).body.metadata.labels.buildconfig, "app");
    const denied = await request("POST", `${BUILD}/buildconfigs/app/instantiate`, {
      token: "viewer-token",
      body: { metadata: { name: "app" } },
    });
    assert.equal(denied.status, 403);
    assert.equal(
      denied.body.message,
      'buildconfigs.build.openshift.io "app" is forbidden: User "viewer" cannot create resource "buildconfigs/instantiate" in API group "build.openshift.io" in the namespace "default"',
    );
  });
});
