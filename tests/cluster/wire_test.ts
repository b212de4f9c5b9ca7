/**
 * @module
 * Wire shapes of the real apiserver that an imitation easily gets wrong, pinned so the test world
 * can be held to them: expired watches, bookmarks, MicroTime, patch media types on custom
 * resources, server-side apply conflicts, and a namespace's termination with a finalizer.
 */
import assert from "node:assert/strict";
import { startRealCluster } from "./mod.ts";

const FINALIZER = "quay.redhat.com/quayintegrations";

function json(method: string, body: unknown, contentType = "application/json"): RequestInit {
  return { method, headers: { "Content-Type": contentType }, body: JSON.stringify(body) };
}

/** Reads a watch stream's JSON lines until `enough` says stop or the server ends the stream. */
async function watchEvents(
  response: Response,
  enough: (events: { type: string; object: Record<string, unknown> }[]) => boolean,
): Promise<{ type: string; object: Record<string, unknown> }[]> {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  if (!response.body) throw new Error(`watch answered ${response.status} without a body`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

Deno.test("the real apiserver's wire shapes that imitations get wrong", async (t) => {
  await using cluster = await startRealCluster();
  const created = await cluster.request("/api/v1/namespaces", json("POST", { metadata: { name: "p1" } }));
  assert.equal(created.status, 201);
  await created.body?.cancel();

  await t.step(
    "a watch from an expired resourceVersion is HTTP 200 with an in-stream 410 ERROR",
    async () => {
      const response = await cluster.request("/apis/build.openshift.io/v1/builds?watch=1&resourceVersion=1");
      assert.equal(response.status, 200);
      const [event] = await watchEvents(response, (events) => events.length > 0);
      assert.equal(event?.type, "ERROR");
      const { message, ...status } = event.object;
      assert.deepEqual(status, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        reason: "Expired",
        code: 410,
      });
      assert.match(String(message), /^too old resource version: 1 \(\d+\)$/);
    },
  );

  await t.step("a watch-list ends its initial events with an annotated BOOKMARK", async () => {
    const response = await cluster.request(
      "/apis/build.openshift.io/v1/namespaces/p1/builds?watch=1&sendInitialEvents=true" +
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    );
    const [event] = await watchEvents(response, (events) => events.length > 0);
    assert.equal(event?.type, "BOOKMARK");
    const metadata = event.object["metadata"] as { resourceVersion: string };
    assert.deepEqual(event.object, {
      apiVersion: "build.openshift.io/v1",
      kind: "Build",
      metadata: {
        annotations: { "k8s.io/initial-events-end": "true" },
        resourceVersion: metadata.resourceVersion,
      },
    });
  });

  await t.step("MicroTime fields take exactly six fractional digits", async () => {
    const lease = (name: string, renewTime: string) =>
      cluster.request(
        "/apis/coordination.k8s.io/v1/namespaces/p1/leases",
        json("POST", {
          metadata: { name },
          spec: { holderIdentity: "a", leaseDurationSeconds: 15, renewTime },
        }),
      );
    const millis = await lease("a", "2026-01-01T00:00:00.000Z");
    assert.equal(millis.status, 400);
    assert.equal(
      (await millis.json()).message,
      'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-01-01T00:00:00.000Z" as ' +
        '"2006-01-02T15:04:05.000000Z07:00": cannot parse ".000Z" as ".000000"',
    );
    const micros = await lease("b", "2026-01-01T00:00:00.000000Z");
    assert.equal(micros.status, 201);
    assert.equal((await micros.json()).spec.renewTime, "2026-01-01T00:00:00.000000Z");
  });

  await t.step("custom resources refuse strategic merge patch with 415", async () => {
    const response = await cluster.request(
      "/apis/image.openshift.io/v1/namespaces/p1/imagestreams/x",
      json("PATCH", {}, "application/strategic-merge-patch+json"),
    );
    assert.equal(response.status, 415);
    assert.equal(
      (await response.json()).message,
      "the body of the request was in an unknown format - accepted media types include: " +
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    );
  });

  await t.step("server-side apply reports a field owned by another manager as a 409 conflict", async () => {
    const apply = (manager: string, value: string) =>
      cluster.request(
        `/api/v1/namespaces/p1?fieldManager=${manager}`,
        json(
          "PATCH",
          { apiVersion: "v1", kind: "Namespace", metadata: { name: "p1", labels: { owner: value } } },
          "application/apply-patch+yaml",
        ),
      );
    const first = await apply("quay-bridge", "qb");
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const second = await apply("someone-else", "other");
    assert.equal(second.status, 409);
    assert.deepEqual(await second.json(), {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'Apply failed with 1 conflict: conflict with "quay-bridge": .metadata.labels.owner',
      reason: "Conflict",
      details: {
        causes: [{
          reason: "FieldManagerConflict",
          message: 'conflict with "quay-bridge"',
          field: ".metadata.labels.owner",
        }],
      },
      code: 409,
    });
  });

  await t.step(
    "a namespace with a finalizer terminates, refuses new content, and goes once released",
    async () => {
      const ns = await cluster.request(
        "/api/v1/namespaces",
        json("POST", { metadata: { name: "p2", finalizers: [FINALIZER] } }),
      );
      assert.equal(ns.status, 201);
      await ns.body?.cancel();
      const build = await cluster.request(
        "/apis/build.openshift.io/v1/namespaces/p2/builds",
        json("POST", {
          apiVersion: "build.openshift.io/v1",
          kind: "Build",
          metadata: { name: "b" },
          spec: { strategy: { type: "Docker" } },
        }),
      );
      assert.equal(build.status, 201);
      await build.body?.cancel();

      const deleted = await cluster.request("/api/v1/namespaces/p2", { method: "DELETE" });
      assert.equal(deleted.status, 200);
      const terminating = await deleted.json();
      assert.equal(terminating.status.phase, "Terminating");
      assert.ok(terminating.metadata.deletionTimestamp);
      assert.deepEqual(terminating.spec, { finalizers: ["kubernetes"] });
      assert.deepEqual(terminating.metadata.finalizers, [FINALIZER]);

      const refused = await cluster.request(
        "/api/v1/namespaces/p2/configmaps",
        json("POST", { metadata: { name: "cm" } }),
      );
      assert.equal(refused.status, 403);
      assert.deepEqual((await refused.json()).details, {
        name: "cm",
        kind: "configmaps",
        causes: [{
          reason: "NamespaceTerminating",
          message: "namespace p2 is being terminated",
          field: "metadata.namespace",
        }],
      });

      // The namespace controller empties it and drops spec.finalizers; ours keeps the namespace.
      let current = terminating;
      for (const deadline = Date.now() + 30_000; current.spec.finalizers?.length && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        current = await (await cluster.request("/api/v1/namespaces/p2")).json();
      }
      assert.deepEqual(current.spec, {});
      assert.deepEqual(current.metadata.finalizers, [FINALIZER]);
      const gone = await cluster.request("/apis/build.openshift.io/v1/namespaces/p2/builds/b");
      assert.equal(gone.status, 404);
      await gone.body?.cancel();

      const released = await cluster.request(
        "/api/v1/namespaces/p2",
        json("PATCH", [
          { op: "test", path: "/metadata/finalizers", value: [FINALIZER] },
          { op: "remove", path: "/metadata/finalizers" },
        ], "application/json-patch+json"),
      );
      assert.equal(released.status, 200);
      // The answer is the last state, finalizer gone, with the resourceVersion it had before.
      const last = await released.json();
      assert.equal(last.metadata.finalizers, undefined);
      assert.equal(last.metadata.resourceVersion, current.metadata.resourceVersion);
      const after = await cluster.request("/api/v1/namespaces/p2");
      assert.equal(after.status, 404);
      await after.body?.cancel();
    },
  );
});
