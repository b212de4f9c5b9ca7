/**
 * The API semantics the operator relies on, over HTTP: optimistic concurrency, status
 * subresources and generation, finalizers, namespace termination, list paging and selectors,
 * watches with bookmarks, timeouts and 410 Gone, and the decoding rules of Secrets and MicroTime.
 */
import assert from "node:assert/strict";
import { eventually, withWorld } from "./test_helpers.ts";

const CM = "/api/v1/namespaces/default/configmaps";
const MERGE = "application/merge-patch+json";

Deno.test("an update with a stale resourceVersion is a 409 Conflict with the apiserver's message", async () => {
  await withWorld({}, async ({ request }) => {
    const created = await request("POST", CM, { body: { metadata: { name: "c" }, data: { a: "1" } } });
    assert.equal(created.status, 201);
    const rv = created.body.metadata.resourceVersion;
    const first = await request("PUT", `${CM}/c`, { body: { ...created.body, data: { a: "2" } } });
    assert.equal(first.status, 200);
    assert.ok(Number(first.body.metadata.resourceVersion) > Number(rv));
    const stale = await request("PUT", `${CM}/c`, { body: { ...created.body, data: { a: "3" } } });
    assert.equal(stale.status, 409);
    assert.deepEqual(stale.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the latest version and try again',
      reason: "Conflict",
      details: { name: "c", kind: "configmaps" },
      code: 409,
    });
    const patchStale = await request("PATCH", `${CM}/c`, {
      body: { metadata: { resourceVersion: rv }, data: { a: "4" } },
      contentType: MERGE,
    });
    assert.equal(patchStale.status, 409);
    const dup = await request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.reason, "AlreadyExists");
    assert.equal(dup.body.message, 'configmaps "c" already exists');
    const precondition = await request("DELETE", `${CM}/c`, { body: { preconditions: { uid: "not-it" } } });
    assert.equal(precondition.status, 409);
    assert.match(
      precondition.body.message,
      /the UID in the precondition \(not-it\) does not match the UID in record/,
    );
    const unchanged = await request("PUT", `${CM}/c`, { body: first.body });
    assert.equal(
      unchanged.body.metadata.resourceVersion,
      first.body.metadata.resourceVersion,
      "a no-op update writes nothing",
    );
  });
});

Deno.test("the main endpoint ignores status, /status ignores the rest, and generation follows spec changes", async () => {
  await withWorld({}, async ({ request }) => {
    const path = "/apis/image.openshift.io/v1/namespaces/default/imagestreams";
    const created = await request("POST", path, {
      body: {
        metadata: { name: "app" },
        spec: { lookupPolicy: { local: false } },
        status: { dockerImageRepository: "x" },
      },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.metadata.generation, 1);
    assert.equal(created.body.status, undefined, "status is not set through the main endpoint");
    const status = await request("PUT", `${path}/app/status`, {
      body: {
        ...created.body,
        spec: { lookupPolicy: { local: true } },
        status: { dockerImageRepository: "quay.example/ns/app" },
      },
    });
    assert.equal(status.status, 200);
    assert.equal(status.body.status.dockerImageRepository, "quay.example/ns/app");
    assert.equal(status.body.spec.lookupPolicy.local, false, "/status ignores spec");
    assert.equal(status.body.metadata.generation, 1);
    const labelled = await request("PATCH", `${path}/app`, {
      body: { metadata: { labels: { a: "b" } } },
      contentType: MERGE,
    });
    assert.equal(labelled.body.metadata.generation, 1, "metadata changes do not bump generation");
    const spec = await request("PATCH", `${path}/app`, {
      body: { spec: { lookupPolicy: { local: true } }, status: { dockerImageRepository: "ignored" } },
      contentType: MERGE,
    });
    assert.equal(spec.body.metadata.generation, 2);
    assert.equal(spec.body.status.dockerImageRepository, "quay.example/ns/app");
  });
});

Deno.test("finalizers hold an object in deletion until the last one goes, and no new ones may be added", async () => {
  await withWorld({}, async ({ request }) => {
    await request("POST", CM, { body: { metadata: { name: "held", finalizers: ["example.com/hold"] } } });
    const deleting = await request("DELETE", `${CM}/held`);
    assert.equal(deleting.status, 200);
    assert.ok(deleting.body.metadata.deletionTimestamp);
    assert.equal((await request("GET", `${CM}/held`)).status, 200);
    const added = await request("PATCH", `${CM}/held`, {
      body: { metadata: { finalizers: ["example.com/hold", "example.com/more"] } },
      contentType: MERGE,
    });
    assert.equal(added.status, 422);
    assert.equal(
      added.body.message,
      'ConfigMap "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/more"}',
    );
    const released = await request("PATCH", `${CM}/held`, {
      body: [{ op: "test", path: "/metadata/finalizers/0", value: "example.com/hold" }, {
        op: "remove",
        path: "/metadata/finalizers/0",
      }],
      contentType: "application/json-patch+json",
    });
    assert.equal(released.status, 200);
    assert.equal((await request("GET", `${CM}/held`)).status, 404);
  });
});

Deno.test("a deleted namespace terminates: contents go, finalizers are awaited, creates are forbidden", async () => {
  await withWorld({}, async ({ request, watch }) => {
    await request("POST", "/api/v1/namespaces", {
      body: { metadata: { name: "doomed", finalizers: ["quay.redhat.com/quayintegrations"] } },
    });
    const ns = await request("GET", "/api/v1/namespaces/doomed");
    assert.equal(ns.body.status.phase, "Active");
    assert.equal(ns.body.metadata.labels["kubernetes.io/metadata.name"], "doomed");
    assert.deepEqual(ns.body.spec.finalizers, ["kubernetes"]);
    await request("POST", "/api/v1/namespaces/doomed/secrets", { body: { metadata: { name: "plain" } } });
    await request("POST", "/api/v1/namespaces/doomed/configmaps", {
      body: { metadata: { name: "held", finalizers: ["example.com/hold"] } },
    });
    const events = await watch(
      `/api/v1/namespaces?watch=1&fieldSelector=metadata.name=doomed&resourceVersion=${ns.body.metadata.resourceVersion}`,
    );
    try {
      const deleted = await request("DELETE", "/api/v1/namespaces/doomed");
      assert.equal(deleted.status, 200);
      assert.equal(deleted.body.status.phase, "Terminating");
      const forbidden = await request("POST", "/api/v1/namespaces/doomed/configmaps", {
        body: { metadata: { name: "late" } },
      });
      assert.equal(forbidden.status, 403);
      assert.equal(
        forbidden.body.message,
        'configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated',
      );
      assert.deepEqual(forbidden.body.details.causes, [
        {
          reason: "NamespaceTerminating",
          message: "namespace doomed is being terminated",
          field: "metadata.namespace",
        },
      ]);
      await eventually(
        async () => (await request("GET", "/api/v1/namespaces/doomed/secrets/plain")).status === 404,
        3000,
        "content deletion",
      );
      const held = await request("GET", "/api/v1/namespaces/doomed/configmaps/held");
      assert.ok(held.body.metadata.deletionTimestamp, "objects with finalizers wait");
      const waiting = await request("GET", "/api/v1/namespaces/doomed");
      assert.deepEqual(waiting.body.spec.finalizers, ["kubernetes"]);
      const remaining = waiting.body.status.conditions.find((c: { type: string }) =>
        c.type === "NamespaceFinalizersRemaining"
      );
      assert.equal(remaining.status, "True");
      assert.match(remaining.message, /example\.com\/hold in 1 resource instances/);
      await request("PATCH", "/api/v1/namespaces/doomed/configmaps/held", {
        body: { metadata: { finalizers: null } },
        contentType: MERGE,
      });
      await eventually(
        async () => {
          const r = await request("GET", "/api/v1/namespaces/doomed");
          return r.body.spec !== undefined && r.body.spec.finalizers === undefined;
        },
        3000,
        "the kubernetes finalizer to go",
      );
      assert.equal(
        (await request("GET", "/api/v1/namespaces/doomed")).status,
        200,
        "the operator's finalizer still holds it",
      );
      await request("PATCH", "/api/v1/namespaces/doomed", {
        body: { metadata: { finalizers: [] } },
        contentType: MERGE,
      });
      assert.equal((await request("GET", "/api/v1/namespaces/doomed")).status, 404);
      const last = await events.until((e) => e.type === "DELETED");
      assert.equal(last.object.metadata.name, "doomed");
      const again = await request("DELETE", "/api/v1/namespaces/default");
      assert.equal(again.status, 403);
      assert.equal(
        again.body.message,
        'namespaces "default" is forbidden: this namespace may not be deleted',
      );
    } finally {
      await events.close();
    }
  });
});

Deno.test("lists page with limit and continue, honour selectors, and refuse a compacted continue token", async () => {
  await withWorld({}, async ({ world, request }) => {
    for (let i = 0; i < 7; i++) {
      await request("POST", CM, {
        body: { metadata: { name: `c${i}`, labels: { tier: i % 2 ? "odd" : "even", n: String(i) } } },
      });
    }
    const first = await request("GET", `${CM}?limit=3`);
    assert.deepEqual(first.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), [
      "c0",
      "c1",
      "c2",
    ]);
    assert.equal(first.body.metadata.remainingItemCount, 4);
    const second = await request("GET", `${CM}?limit=3&continue=${first.body.metadata.continue}`);
    assert.deepEqual(second.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), [
      "c3",
      "c4",
      "c5",
    ]);
    assert.equal(second.body.metadata.resourceVersion, first.body.metadata.resourceVersion);
    const third = await request("GET", `${CM}?limit=3&continue=${second.body.metadata.continue}`);
    assert.deepEqual(third.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ["c6"]);
    assert.equal(third.body.metadata.continue, undefined);

    const names = async (query: string) =>
      (await request("GET", `${CM}?${query}`)).body.items.map((i: { metadata: { name: string } }) =>
        i.metadata.name
      );
    assert.deepEqual(await names("labelSelector=tier%3Dodd"), ["c1", "c3", "c5"]);
    assert.deepEqual(await names("labelSelector=tier%20notin%20(odd),n%20in%20(0,2)"), ["c0", "c2"]);
    assert.deepEqual(await names("labelSelector=n%3E4"), ["c5", "c6"]);
    assert.deepEqual(await names("labelSelector=!missing,tier!%3Deven"), ["c1", "c3", "c5"]);
    assert.deepEqual(await names("fieldSelector=metadata.name%3Dc4"), ["c4"]);
    assert.deepEqual(
      await names("fieldSelector=metadata.name!%3Dc4,metadata.namespace%3Ddefault&labelSelector=tier%3Deven"),
      ["c0", "c2", "c6"],
    );

    const badLabel = await request("GET", `${CM}?labelSelector=a%20in%20(`);
    assert.equal(badLabel.status, 400);
    assert.equal(
      badLabel.body.message,
      "unable to parse requirement: found '', expected: ',', ')' or identifier",
    );
    const badField = await request("GET", `${CM}?fieldSelector=data.a%3D1`);
    assert.equal(
      badField.body.message,
      '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"',
    );
    const secretField = await request(
      "GET",
      "/api/v1/namespaces/default/secrets?fieldSelector=type%3DOpaque",
    );
    assert.equal(secretField.status, 200);
    const badSecretField = await request("GET", "/api/v1/namespaces/default/secrets?fieldSelector=data%3D1");
    assert.equal(badSecretField.body.message, "field label not supported: data");

    const token = (await request("GET", `${CM}?limit=2`)).body.metadata.continue;
    await request("POST", CM, { body: { metadata: { name: "after" } } });
    world.compact();
    const gone = await request("GET", `${CM}?limit=2&continue=${token}`);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.reason, "Expired");
    assert.match(
      gone.body.message,
      /^The provided continue parameter is too old to display a consistent list result/,
    );
    const badToken = await request("GET", `${CM}?limit=2&continue=garbage`);
    assert.equal(badToken.status, 400);
    assert.match(badToken.body.message, /^invalid continue token/);
  });
});

Deno.test("a watch from a resourceVersion replays what followed it and moves objects in and out of a selector", async () => {
  await withWorld({}, async ({ request, watch }) => {
    const a = await request("POST", CM, { body: { metadata: { name: "a", labels: { app: "x" } } } });
    await request("PATCH", `${CM}/a`, { body: { data: { k: "1" } }, contentType: MERGE });
    const w = await watch(
      `${CM}?watch=1&labelSelector=app%3Dx&resourceVersion=${a.body.metadata.resourceVersion}`,
    );
    try {
      const replayed = await w.next();
      assert.equal(replayed.type, "MODIFIED");
      assert.equal(replayed.object.data.k, "1");
      await request("PATCH", `${CM}/a`, { body: { metadata: { labels: { app: "y" } } }, contentType: MERGE });
      const left = await w.next();
      assert.equal(left.type, "DELETED", "an object that stops matching the selector leaves the watch");
      await request("PATCH", `${CM}/a`, { body: { metadata: { labels: { app: "x" } } }, contentType: MERGE });
      assert.equal((await w.next()).type, "ADDED");
      await request("DELETE", `${CM}/a`);
      const deleted = await w.next();
      assert.equal(deleted.type, "DELETED");
      assert.ok(
        Number(deleted.object.metadata.resourceVersion) > Number(left.object.metadata.resourceVersion),
      );
    } finally {
      await w.close();
    }
  });
});

Deno.test("watches send bookmarks, end cleanly at timeoutSeconds, and start with the current state", async () => {
  await withWorld({ bookmarkIntervalMs: 100 }, async ({ world, request, watch }) => {
    await request("POST", CM, { body: { metadata: { name: "existing" } } });
    const w = await watch(`${CM}?watch=true&allowWatchBookmarks=true&timeoutSeconds=1`);
    const initial = await w.next();
    assert.equal(initial.type, "ADDED");
    assert.equal(initial.object.metadata.name, "existing");
    const bookmark = await w.until((e) => e.type === "BOOKMARK");
    assert.deepEqual(Object.keys(bookmark.object), ["kind", "apiVersion", "metadata"]);
    assert.equal(bookmark.object.kind, "ConfigMap");
    assert.equal(bookmark.object.metadata.resourceVersion, world.resourceVersion());
    let end: unknown = null;
    for (let i = 0; i < 100 && end !== undefined; i++) end = await w.next(3000);
    assert.equal(end, undefined, "the server ends the stream after timeoutSeconds");
    await w.close();
    assert.equal(world.openWatches(), 0);

    const initialEvents = await watch(
      `${CM}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`,
    );
    try {
      assert.equal((await initialEvents.next()).object.metadata.name, "existing");
      const end2 = await initialEvents.next();
      assert.equal(end2.type, "BOOKMARK");
      assert.equal(end2.object.metadata.annotations["k8s.io/initial-events-end"], "true");
    } finally {
      await initialEvents.close();
    }
  });
});

Deno.test("a watch from a compacted resourceVersion gets 410 in-stream, or as HTTP 410 when asked", async () => {
  await withWorld({ watchHistory: 3 }, async ({ world, request, watch }) => {
    const first = await request("POST", CM, { body: { metadata: { name: "old" } } });
    for (let i = 0; i < 5; i++) await request("POST", CM, { body: { metadata: { name: `n${i}` } } });
    const stale = first.body.metadata.resourceVersion;
    const w = await watch(`${CM}?watch=1&resourceVersion=${stale}`);
    assert.equal(w.status, 200);
    const error = await w.next();
    assert.equal(error.type, "ERROR");
    assert.equal(error.object.kind, "Status");
    assert.equal(error.object.code, 410);
    assert.equal(error.object.reason, "Expired");
    assert.match(error.object.message, new RegExp(`^too old resource version: ${stale} \\(\\d+\\)$`));
    assert.equal(await w.next(), undefined);
    await w.close();

    world.setWatchExpiredAs("http");
    const http = await request("GET", `${CM}?watch=1&resourceVersion=${stale}`);
    assert.equal(http.status, 410);
    assert.equal(http.body.reason, "Expired");

    const current = world.resourceVersion();
    world.compact();
    const afterCompact = await request("GET", `${CM}?watch=1&resourceVersion=${Number(current) - 1}`);
    assert.equal(afterCompact.status, 410, "compact() forgets every earlier version");
    const fresh = await watch(`${CM}?watch=1&resourceVersion=${current}`);
    try {
      await request("POST", CM, { body: { metadata: { name: "new" } } });
      assert.equal(
        (await fresh.next()).object.metadata.name,
        "new",
        "the current version is still watchable",
      );
    } finally {
      await fresh.close();
    }
  });
});

Deno.test("Secrets fold stringData and reject bad base64; MicroTime fields need six fractional digits", async () => {
  await withWorld({}, async ({ request }) => {
    const s = await request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "s" }, data: { a: "YQ==" }, stringData: { b: "x" } },
    });
    assert.equal(s.status, 201);
    assert.deepEqual(s.body.data, { a: "YQ==", b: "eA==" });
    assert.equal(s.body.type, "Opaque");
    assert.equal(s.body.stringData, undefined);
    const bad = await request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "t" }, data: { a: "!!!" } },
    });
    assert.equal(bad.status, 400);
    assert.equal(
      bad.body.message,
      'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0',
    );
    const docker = await request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "d" }, type: "kubernetes.io/dockerconfigjson", data: {} },
    });
    assert.equal(docker.status, 422);
    assert.match(docker.body.message, /data\[\.dockerconfigjson\]: Required value/);

    const leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    const millis = await request("POST", leases, {
      body: { metadata: { name: "l" }, spec: { renewTime: "2024-01-01T00:00:00.000Z" } },
    });
    assert.equal(millis.status, 400);
    assert.equal(
      millis.body.message,
      'Lease in version "v1" cannot be handled as a Lease: parsing time "2024-01-01T00:00:00.000Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".000Z" as ".000000"',
    );
    const micro = await request("POST", leases, {
      body: {
        metadata: { name: "l" },
        spec: { holderIdentity: "me", renewTime: "2024-01-01T00:00:00.000000Z", leaseDurationSeconds: 15 },
      },
    });
    assert.equal(micro.status, 201);
    const event = await request("POST", "/api/v1/namespaces/default/events", {
      body: {
        metadata: { name: "e" },
        involvedObject: { kind: "Namespace", name: "default" },
        eventTime: "2024-01-01T00:00:00Z",
      },
    });
    assert.equal(event.status, 400);
    assert.match(event.body.message, /cannot parse "Z" as "\.000000"/);
  });
});

Deno.test("creates validate names, honour generateName and dryRun, and check the namespace exists", async () => {
  await withWorld({}, async ({ request }) => {
    const bad = await request("POST", "/api/v1/namespaces", { body: { metadata: { name: "Bad_Name" } } });
    assert.equal(bad.status, 422);
    assert.equal(
      bad.body.message,
      `Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    );
    assert.deepEqual(bad.body.details.causes[0].field, "metadata.name");
    const generated = await request("POST", CM, { body: { metadata: { generateName: "gen-" } } });
    assert.match(generated.body.metadata.name, /^gen-[a-z0-9]{5}$/);
    const dry = await request("POST", `${CM}?dryRun=All`, { body: { metadata: { name: "dry" } } });
    assert.equal(dry.status, 201);
    assert.equal((await request("GET", `${CM}/dry`)).status, 404);
    const missing = await request("POST", "/api/v1/namespaces/nowhere/configmaps", {
      body: { metadata: { name: "x" } },
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'namespaces "nowhere" not found');
    const noName = await request("POST", CM, { body: { metadata: {} } });
    assert.equal(
      noName.body.message,
      'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required',
    );
    const renamed = await request("PUT", `${CM}/${generated.body.metadata.name}`, {
      body: { ...generated.body, metadata: { ...generated.body.metadata, name: "other" } },
    });
    assert.equal(renamed.status, 400);
    assert.equal(
      renamed.body.message,
      `the name of the object (other) does not match the name on the URL (${generated.body.metadata.name})`,
    );
  });
});

Deno.test("deletecollection deletes what the selector picks, and a namespace's finalizers change only through /finalize", async () => {
  await withWorld({}, async ({ request }) => {
    for (const [name, tier] of [["a", "x"], ["b", "x"], ["c", "y"]]) {
      await request("POST", CM, { body: { metadata: { name, labels: { tier } } } });
    }
    const deleted = await request("DELETE", `${CM}?labelSelector=tier%3Dx`);
    assert.equal(deleted.status, 200);
    const left = await request("GET", CM);
    assert.deepEqual(left.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ["c"]);

    await request("POST", "/api/v1/namespaces", { body: { metadata: { name: "keep" } } });
    const ns = await request("GET", "/api/v1/namespaces/keep");
    const main = await request("PUT", "/api/v1/namespaces/keep", {
      body: { ...ns.body, spec: { finalizers: [] } },
    });
    assert.deepEqual(main.body.spec.finalizers, ["kubernetes"]);
    const finalize = await request("PUT", "/api/v1/namespaces/keep/finalize", {
      body: { ...main.body, spec: { finalizers: [] } },
    });
    assert.equal(finalize.status, 200);
    assert.deepEqual(finalize.body.spec.finalizers, undefined);
  });
});
