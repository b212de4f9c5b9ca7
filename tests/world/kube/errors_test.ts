/**
 * Bad requests get the Status bodies a real apiserver sends, and never crash the server.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { withWorld } from "./test_helpers.ts";

const CM = "/api/v1/namespaces/default/configmaps";

Deno.test("malformed bodies, wrong content types and unknown paths are answered with Status errors", async () => {
  await withWorld({}, async ({ request }) => {
    const malformed = await request("POST", CM, { raw: "{bad json" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.reason, "BadRequest");
    assert.match(
      malformed.body.message,
      /^the object provided is unrecognized \(must be of type ConfigMap\): couldn't get version\/kind; json parse error: /,
    );
    const array = await request("POST", CM, { raw: "[]" });
    assert.equal(array.status, 400);
    assert.match(array.body.message, /json: cannot unmarshal array into Go value of type struct/);
    const wrongKind = await request("POST", CM, {
      body: { kind: "Secret", apiVersion: "v1", metadata: { name: "x" } },
    });
    assert.equal(
      wrongKind.body.message,
      'Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion',
    );
    const wrongVersion = await request("POST", CM, {
      body: { kind: "ConfigMap", apiVersion: "v2", metadata: { name: "x" } },
    });
    assert.match(
      wrongVersion.body.message,
      /^ConfigMap in version "v2" cannot be handled as a ConfigMap: no kind "ConfigMap" is registered for version "v2"/,
    );
    const wrongNs = await request("POST", "/api/v1/namespaces/kube-system/configmaps", {
      body: { metadata: { name: "x", namespace: "default" } },
    });
    assert.equal(
      wrongNs.body.message,
      "the namespace of the provided object does not match the namespace sent on the request",
    );

    const form = await request("POST", CM, { raw: "a=b", contentType: "application/x-www-form-urlencoded" });
    assert.equal(form.status, 415);
    assert.deepEqual(form.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
      reason: "UnsupportedMediaType",
      code: 415,
    });
    const patchType = await request("PATCH", `${CM}/x`, { raw: "{}", contentType: "application/json" });
    assert.equal(patchType.status, 415);
    const yaml = await request("POST", CM, {
      raw: "metadata:\n  name: from-yaml\n",
      contentType: "application/yaml",
    });
    assert.equal(yaml.status, 201);

    const big = await request("POST", CM, {
      raw: JSON.stringify({ metadata: { name: "big" }, data: { a: "x".repeat(3_200_000) } }),
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.message, "Request entity too large: limit is 3145728");
    assert.equal(big.body.reason, "RequestEntityTooLarge");

    const unknownResource = await request("GET", "/api/v1/namespaces/default/widgets");
    assert.equal(unknownResource.status, 404);
    assert.deepEqual(unknownResource.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "the server could not find the requested resource",
      reason: "NotFound",
      details: {},
      code: 404,
    });
    const unknownPath = await request("GET", "/bogus");
    assert.equal(unknownPath.status, 404);
    assert.equal(unknownPath.text, "404 page not found\n");
    const unknownGroup = await request("GET", "/apis/nothing.example.com/v1");
    assert.equal(unknownGroup.status, 404);
    const clusterPost = await request("POST", "/api/v1/configmaps", { body: { metadata: { name: "x" } } });
    assert.equal(clusterPost.status, 405);
    assert.equal(clusterPost.body.reason, "MethodNotAllowed");
    const badDryRun = await request("POST", `${CM}?dryRun=Foo`, { body: { metadata: { name: "x" } } });
    assert.equal(
      badDryRun.body.message,
      'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Foo"]: supported values: "All"',
    );
    const applyWithoutManager = await request("PATCH", `${CM}/x`, {
      raw: "{}",
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(
      applyWithoutManager.body.message,
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
    const badJsonPatch = await request("PATCH", `${CM}/from-yaml`, {
      raw: '{"op":"remove"}',
      contentType: "application/json-patch+json",
    });
    assert.equal(
      badJsonPatch.body.message,
      "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
    );
    const failedTest = await request("PATCH", `${CM}/from-yaml`, {
      body: [{ op: "test", path: "/data/a", value: "nope" }],
      contentType: "application/json-patch+json",
    });
    assert.equal(failedTest.status, 422);
    assert.equal(failedTest.body.message, "the server rejected our request due to an error in our request");
    const missing = await request("PATCH", `${CM}/nope`, {
      body: {},
      contentType: "application/merge-patch+json",
    });
    assert.equal(missing.body.message, 'configmaps "nope" not found');
    const tooNew = await request("GET", `${CM}?resourceVersion=999999999&resourceVersionMatch=NotOlderThan`);
    assert.equal(tooNew.status, 504);
    assert.equal(tooNew.body.reason, "Timeout");
    assert.match(tooNew.body.message, /^Timeout: Too large resource version: 999999999, current: \d+$/);
  });
});

Deno.test("random requests never crash the server: every answer is a Status or a valid object", async () => {
  await withWorld({}, async ({ request }) => {
    const paths = fc.constantFrom(
      CM,
      `${CM}/x`,
      "/api/v1/namespaces",
      "/api/v1/namespaces/default",
      "/api/v1/namespaces/default/status",
      "/apis/apps/v1/namespaces/default/deployments",
      "/apis/rbac.authorization.k8s.io/v1/clusterroles",
      "/apis/image.openshift.io/v1/namespaces/default/imagestreamimports",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      "/api/v1/namespaces/default/secrets/x",
      "/api/v1/watch/namespaces",
    );
    const methods = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE");
    const types = fc.constantFrom(
      "application/json",
      "application/merge-patch+json",
      "application/json-patch+json",
      "application/strategic-merge-patch+json",
      "application/apply-patch+yaml",
      "application/yaml",
      "text/plain",
    );
    const query = fc.constantFrom(
      "",
      "?labelSelector=a%20in%20(",
      "?fieldSelector=x",
      "?limit=-1",
      "?continue=zz",
      "?resourceVersion=abc",
      "?dryRun=All",
      "?timeoutSeconds=0",
    );
    const bodies = fc.oneof(
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({
        metadata: fc.record({ name: fc.string(), labels: fc.dictionary(fc.string(), fc.string()) }),
        data: fc.anything(),
      }).map((v) => JSON.stringify(v)),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(methods, paths, query, types, bodies, async (method, path, q, type, body) => {
        const watchLike = method === "GET" && (path.includes("/watch/") || q.includes("watch"));
        if (watchLike) return;
        const r = await request(method, path + q, method === "GET" ? {} : { raw: body, contentType: type });
        // No webhooks are configured, so a 500 could only be a bug of the world's.
        assert.ok(
          r.status !== 500,
          `${method} ${path}${q} ${body.slice(0, 100)} -> ${r.status} ${r.text.slice(0, 300)}`,
        );
        assert.ok(
          r.body !== undefined || r.text === "404 page not found\n",
          `${method} ${path}${q} answered non-JSON: ${r.text.slice(0, 200)}`,
        );
        if (r.status >= 400) assert.equal(r.body.kind, "Status");
      }),
      { numRuns: 500 },
    );
    assert.equal((await request("GET", "/version")).status, 200);
  });
});
