/**
 * Strategic merge patch for the core types: lists merged by their merge keys, primitive sets, and
 * the directives kubectl sends (`$patch`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`,
 * `$retainKeys`).
 */
import assert from "node:assert/strict";
import { Kubectl, withWorld } from "./test_helpers.ts";

const SMP = "application/strategic-merge-patch+json";

Deno.test("strategic merge patch merges serviceaccount secrets by name and honours kubectl's directives", async () => {
  await withWorld({}, async ({ request }) => {
    const path = "/api/v1/namespaces/default/serviceaccounts/builder";
    await request("POST", "/api/v1/namespaces/default/serviceaccounts", {
      body: {
        metadata: { name: "builder", finalizers: ["a.example/x"] },
        secrets: [{ name: "one" }, { name: "two" }],
        imagePullSecrets: [{ name: "pull" }],
      },
    });
    const merged = await request("PATCH", path, { body: { secrets: [{ name: "three" }] }, contentType: SMP });
    assert.deepEqual(merged.body.secrets, [{ name: "one" }, { name: "two" }, { name: "three" }]);
    const deleted = await request("PATCH", path, {
      body: { secrets: [{ $patch: "delete", name: "two" }] },
      contentType: SMP,
    });
    assert.deepEqual(deleted.body.secrets, [{ name: "one" }, { name: "three" }]);
    const ordered = await request("PATCH", path, {
      body: {
        "$setElementOrder/secrets": [{ name: "three" }, { name: "one" }],
        secrets: [{ name: "three" }],
      },
      contentType: SMP,
    });
    assert.deepEqual(ordered.body.secrets, [{ name: "three" }, { name: "one" }]);
    const replaced = await request("PATCH", path, {
      body: { secrets: [{ name: "only" }, { $patch: "replace" }] },
      contentType: SMP,
    });
    assert.deepEqual(replaced.body.secrets, [{ name: "only" }]);

    const finalizers = await request("PATCH", path, {
      body: { metadata: { finalizers: ["b.example/y", "a.example/x"] } },
      contentType: SMP,
    });
    assert.deepEqual(
      finalizers.body.metadata.finalizers,
      ["a.example/x", "b.example/y"],
      "finalizers merge as a set",
    );
    const removed = await request("PATCH", path, {
      body: { metadata: { "$deleteFromPrimitiveList/finalizers": ["a.example/x"] } },
      contentType: SMP,
    });
    assert.deepEqual(removed.body.metadata.finalizers, ["b.example/y"]);
    const mapReplace = await request("PATCH", path, {
      body: { metadata: { labels: { a: "1", b: "2" } } },
      contentType: SMP,
    });
    assert.deepEqual(mapReplace.body.metadata.labels, { a: "1", b: "2" });
    const replacedMap = await request("PATCH", path, {
      body: { metadata: { labels: { c: "3", $patch: "replace" } } },
      contentType: SMP,
    });
    assert.deepEqual(replacedMap.body.metadata.labels, { c: "3" });
  });
});

Deno.test("strategic merge patch merges pod containers, env and ports by their keys", async () => {
  await withWorld({}, async ({ request }) => {
    const path = "/api/v1/namespaces/default/pods/p";
    await request("POST", "/api/v1/namespaces/default/pods", {
      body: {
        metadata: { name: "p" },
        spec: {
          containers: [
            { name: "app", image: "app:1", env: [{ name: "A", value: "1" }], ports: [{ containerPort: 80 }] },
            { name: "side", image: "side:1" },
          ],
          volumes: [{ name: "data", emptyDir: {} }],
        },
      },
    });
    const patched = await request("PATCH", path, {
      body: {
        spec: {
          containers: [{
            name: "app",
            image: "app:2",
            env: [{ name: "B", value: "2" }],
            ports: [{ containerPort: 443 }],
          }],
        },
      },
      contentType: SMP,
    });
    assert.equal(patched.status, 200, patched.text);
    const [app, side] = patched.body.spec.containers;
    assert.equal(app.image, "app:2");
    assert.deepEqual(app.env, [{ name: "A", value: "1" }, { name: "B", value: "2" }]);
    assert.deepEqual(app.ports, [{ containerPort: 80 }, { containerPort: 443 }]);
    assert.equal(side.image, "side:1");
    const noKey = await request("PATCH", path, {
      body: { spec: { containers: [{ image: "x" }] } },
      contentType: SMP,
    });
    assert.equal(noKey.status, 400);
    assert.match(noKey.body.message, /does not contain declared merge key: name/);
  });
});

Deno.test("kubectl apply removes a container it no longer applies, through the patch it computes", async () => {
  await withWorld({}, async ({ world, request }) => {
    const kubectl = await Kubectl.create(world);
    try {
      const deployment = (containers: string) =>
        `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
${containers}`;
      const two = "      - {name: web, image: 'nginx:1'}\n      - {name: log, image: 'busybox:1'}\n";
      const first = await kubectl.run(["apply", "-f", "-"], { stdin: deployment(two) });
      assert.equal(first.code, 0, first.stderr);
      // Someone else adds an annotation; apply must keep it.
      await request("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", {
        body: { metadata: { annotations: { keep: "me" } } },
        contentType: "application/merge-patch+json",
      });
      const one = "      - {name: web, image: 'nginx:2'}\n";
      const second = await kubectl.run(["apply", "-f", "-"], { stdin: deployment(one) });
      assert.equal(second.code, 0, second.stderr);
      const got = await request("GET", "/apis/apps/v1/namespaces/default/deployments/web");
      assert.deepEqual(got.body.spec.template.spec.containers, [{ name: "web", image: "nginx:2" }]);
      assert.equal(got.body.metadata.annotations.keep, "me");
      assert.equal(got.body.metadata.generation, 2);
      assert.equal(got.body.spec.replicas, 1, "defaults are filled");
    } finally {
      await kubectl.cleanup();
    }
  });
});
