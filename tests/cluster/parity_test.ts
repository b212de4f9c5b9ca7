/**
 * @module
 * The referee: the same requests against the real kube-apiserver and the test world must get the
 * same answers (status code, Status reason and the shape of the body). A difference is a test-world
 * bug (issue 6); each probe here pins one behaviour the operator or kubectl relies on.
 */
import assert from "node:assert/strict";
import { startKubeWorld } from "../world/kube/mod.ts";
import { installCrds, jsonClient } from "../walkthrough/setup.ts";
import type { Api } from "../walkthrough/mod.ts";
import { startRealCluster } from "./mod.ts";

const MERGE = "application/merge-patch+json";
const JSON_PATCH = "application/json-patch+json";
const STRATEGIC = "application/strategic-merge-patch+json";
const APPLY = "application/apply-patch+yaml";

/** Opens a watch and returns its events (type and object name) until the server ends the stream. */
type Watch = (path: string) => Promise<{ type: string; name: string; initialEnd?: string }[]>;

interface Probe {
  name: string;
  run(api: Api, watch: Watch): Promise<unknown>;
}

function watcher(base: string, token: string, caPem: string): Watch & { close(): void } {
  const http = Deno.createHttpClient({ caCerts: [caPem] });
  const watch = async (path: string) => {
    const response = await fetch(base + path, {
      headers: { authorization: `Bearer ${token}` },
      client: http,
    });
    const text = await response.text();
    return text.split("\n").filter((l) => l.trim()).map((line) => {
      const event = JSON.parse(line);
      const annotations = event.object?.metadata?.annotations ?? {};
      const initialEnd = annotations["k8s.io/initial-events-end"];
      return {
        type: event.type,
        name: event.object?.metadata?.name ?? "",
        ...(initialEnd ? { initialEnd } : {}),
      };
    });
  };
  return Object.assign(watch, { close: () => http.close() });
}

/** What is compared: the status and the Status object's identifying fields. */
function outcome(reply: { status: number; body: unknown }): Record<string, unknown> {
  const body = reply.body as Record<string, unknown> | undefined;
  if (body?.kind === "Status") {
    const details = body.details as Record<string, unknown> | undefined;
    return {
      status: reply.status,
      kind: "Status",
      reason: body.reason,
      code: body.code,
      detailsKind: details?.kind,
      detailsName: details?.name,
    };
  }
  return { status: reply.status, kind: body?.kind };
}

const NS = "parity";

/** A minimal valid QuayIntegration, with `spec` merged in. */
function quayIntegration(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "quay.redhat.com/v1",
    kind: "QuayIntegration",
    metadata: { name },
    spec: {
      credentialsSecret: { namespace: NS, name: "quay-integration" },
      quayHostname: "https://quay.example.com",
      ...spec,
    },
  };
}
const CM = `/api/v1/namespaces/${NS}/configmaps`;
const QI = "/apis/quay.redhat.com/v1/quayintegrations";

const probes: Probe[] = [
  { name: "GET a missing ConfigMap", run: async (api) => outcome(await api.call("GET", `${CM}/missing`)) },
  {
    name: "create, then create again",
    run: async (api) => {
      const first = outcome(await api.call("POST", CM, { metadata: { name: "twice" }, data: { a: "1" } }));
      const second = outcome(await api.call("POST", CM, { metadata: { name: "twice" }, data: { a: "1" } }));
      return [first, second];
    },
  },
  {
    name: "update with a stale resourceVersion",
    run: async (api) => {
      const created = await api.ok("POST", CM, { metadata: { name: "stale" }, data: { a: "1" } });
      await api.ok("PUT", `${CM}/stale`, { ...created, data: { a: "2" } });
      return outcome(await api.call("PUT", `${CM}/stale`, { ...created, data: { a: "3" } }));
    },
  },
  {
    name: "merge patch with a stale resourceVersion",
    run: async (api) => {
      const created = await api.ok("POST", CM, { metadata: { name: "stale-patch" }, data: { a: "1" } });
      await api.ok("PATCH", `${CM}/stale-patch`, { data: { a: "2" } }, MERGE);
      return outcome(
        await api.call(
          "PATCH",
          `${CM}/stale-patch`,
          { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { a: "3" } },
          MERGE,
        ),
      );
    },
  },
  {
    name: "an invalid name",
    run: async (api) => outcome(await api.call("POST", CM, { metadata: { name: "Not_Valid" } })),
  },
  {
    name: "merge patch of a missing object",
    run: async (api) => outcome(await api.call("PATCH", `${CM}/absent`, { data: { a: "1" } }, MERGE)),
  },
  {
    name: "a JSON patch whose test fails",
    run: async (api) => {
      await api.ok("POST", CM, { metadata: { name: "tested" }, data: { a: "1" } });
      return outcome(
        await api.call("PATCH", `${CM}/tested`, [{ op: "test", path: "/data/a", value: "2" }], JSON_PATCH),
      );
    },
  },
  {
    name: "a JSON patch that removes a missing member",
    run: async (api) => {
      await api.ok("POST", CM, { metadata: { name: "removed" }, data: { a: "1" } });
      return outcome(
        await api.call("PATCH", `${CM}/removed`, [{ op: "remove", path: "/data/zz" }], JSON_PATCH),
      );
    },
  },
  {
    name: "server-side apply without a fieldManager",
    run: async (api) =>
      outcome(
        await api.call("PATCH", `${CM}/applied`, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "applied" },
        }, APPLY),
      ),
  },
  {
    name: "an invalid label selector",
    run: async (api) => outcome(await api.call("GET", `${CM}?labelSelector=${encodeURIComponent("a in (")}`)),
  },
  {
    name: "paging with limit and continue",
    run: async (api) => {
      for (const name of ["page-a", "page-b", "page-c"]) {
        await api.ok("POST", CM, { metadata: { name, labels: { paged: "yes" } } });
      }
      const first = await api.ok("GET", `${CM}?labelSelector=paged%3Dyes&limit=2`);
      const second = await api.ok(
        "GET",
        `${CM}?labelSelector=paged%3Dyes&limit=2&continue=${encodeURIComponent(first.metadata.continue)}`,
      );
      return {
        first: first.items.length,
        hasContinue: typeof first.metadata.continue === "string" && first.metadata.continue !== "",
        second: second.items.length,
        secondContinue: second.metadata.continue ?? "",
        remaining: first.metadata.remainingItemCount,
      };
    },
  },
  {
    name: "strategic merge patch of a custom resource",
    run: async (api) => {
      await api.ok("POST", QI, quayIntegration("smp"));
      return outcome(await api.call("PATCH", `${QI}/smp`, { spec: { clusterID: "x" } }, STRATEGIC));
    },
  },
  {
    name: "a custom resource violating its schema",
    run: async (api) =>
      outcome(
        await api.call("POST", QI, quayIntegration("bad-enum", { organizationDeletionPolicy: "Sometimes" })),
      ),
  },
  {
    name: "a credential rotation interval: a duration is accepted, anything else refused by the schema",
    run: async (api) => {
      const good = await api.call(
        "POST",
        QI,
        quayIntegration("rotating", { credentialRotation: { interval: "720h" } }),
      );
      const words = await api.call(
        "POST",
        QI,
        quayIntegration("rot-words", { credentialRotation: { interval: "30 days" } }),
      );
      const none = await api.call("POST", QI, quayIntegration("rot-none", { credentialRotation: {} }));
      assert.deepEqual([good.status, words.status, none.status], [201, 422, 422]);
      return [outcome(good), outcome(words), outcome(none), good.body?.spec?.credentialRotation];
    },
  },
  {
    name: "defaults applied to a custom resource",
    run: async (api) => {
      const created = await api.ok("POST", QI, quayIntegration("defaults"));
      return { spec: created.spec, generation: created.metadata.generation };
    },
  },
  {
    name: "a namespace with a finalizer terminates and waits",
    run: async (api) => {
      await api.ok("POST", "/api/v1/namespaces", {
        metadata: { name: "parity-final", finalizers: ["quay.redhat.com/quayintegrations"] },
      });
      const deleted = outcome(await api.call("DELETE", "/api/v1/namespaces/parity-final"));
      const got = await api.ok("GET", "/api/v1/namespaces/parity-final");
      const createInTerminating = outcome(
        await api.call("POST", "/api/v1/namespaces/parity-final/configmaps", { metadata: { name: "late" } }),
      );
      const result = {
        createInTerminating,
        deleted,
        phase: got.status?.phase,
        deleting: typeof got.metadata.deletionTimestamp === "string",
        finalizers: got.metadata.finalizers,
      };
      // Adding a new finalizer to a terminating namespace is refused by neither; removing ours lets it go.
      await api.ok(
        "PATCH",
        "/api/v1/namespaces/parity-final",
        [
          { op: "test", path: "/metadata/finalizers/0", value: "quay.redhat.com/quayintegrations" },
          { op: "remove", path: "/metadata/finalizers/0" },
        ],
        JSON_PATCH,
      );
      const deadline = Date.now() + 30_000;
      while ((await api.call("GET", "/api/v1/namespaces/parity-final")).status !== 404) {
        if (Date.now() > deadline) throw new Error("namespace parity-final did not go");
        await new Promise((r) => setTimeout(r, 200));
      }
      return result;
    },
  },
  {
    name: "a create in a namespace that does not exist",
    run: async (api) =>
      outcome(await api.call("POST", "/api/v1/namespaces/nowhere/configmaps", { metadata: { name: "x" } })),
  },
  {
    name: "a dry-run create stores nothing",
    run: async (api) => {
      const created = outcome(await api.call("POST", `${CM}?dryRun=All`, { metadata: { name: "dry" } }));
      return [created, outcome(await api.call("GET", `${CM}/dry`))];
    },
  },
  {
    name: "a delete whose uid precondition fails",
    run: async (api) => {
      await api.ok("POST", CM, { metadata: { name: "precondition" } });
      return outcome(
        await api.call("DELETE", `${CM}/precondition`, {
          kind: "DeleteOptions",
          apiVersion: "v1",
          preconditions: { uid: "00000000-0000-0000-0000-000000000000" },
        }),
      );
    },
  },
  {
    name: "server-side apply by two managers of one field",
    run: async (api) => {
      const body = (value: string) => ({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "contested" },
        data: { key: value },
      });
      const first = outcome(await api.call("PATCH", `${CM}/contested?fieldManager=one`, body("1"), APPLY));
      const second = outcome(await api.call("PATCH", `${CM}/contested?fieldManager=two`, body("2"), APPLY));
      const forced = outcome(
        await api.call("PATCH", `${CM}/contested?fieldManager=two&force=true`, body("2"), APPLY),
      );
      return [first, second, forced];
    },
  },
  {
    name: "a field selector on metadata.name",
    run: async (api) => {
      await api.ok("POST", CM, { metadata: { name: "selected" } });
      const list = await api.ok("GET", `${CM}?fieldSelector=metadata.name%3Dselected`);
      const bad = outcome(await api.call("GET", `${CM}?fieldSelector=spec.nothing%3Dx`));
      return [list.items.map((i: { metadata: { name: string } }) => i.metadata.name), bad];
    },
  },
  {
    name: "a watch from a list's resourceVersion sees later changes and ends at timeoutSeconds",
    run: async (api, watch) => {
      await api.ok("POST", CM, { metadata: { name: "watched", labels: { watch: "one" } } });
      const list = await api.ok("GET", `${CM}?labelSelector=watch%3Done`);
      const rv = list.metadata.resourceVersion;
      const events = watch(
        `${CM}?watch=true&labelSelector=watch%3Done&resourceVersion=${rv}&timeoutSeconds=2`,
      );
      await new Promise((r) => setTimeout(r, 300));
      await api.ok("PATCH", `${CM}/watched`, { data: { a: "1" } }, MERGE);
      await api.ok("DELETE", `${CM}/watched`);
      return (await events).filter((e) => e.type !== "BOOKMARK");
    },
  },
  {
    name: "a watch-list sends the initial objects, then a bookmark marking their end",
    run: async (api, watch) => {
      for (const name of ["initial-a", "initial-b"]) {
        await api.ok("POST", CM, { metadata: { name, labels: { watch: "initial" } } });
      }
      const events = await watch(
        `${CM}?watch=true&labelSelector=watch%3Dinitial&sendInitialEvents=true&resourceVersionMatch=NotOlderThan` +
          `&allowWatchBookmarks=true&timeoutSeconds=1`,
      );
      const initial = events.filter((e) => e.type === "ADDED").map((e) => e.name).sort();
      const end = events.find((e) => e.type === "BOOKMARK" && e.initialEnd);
      return { initial, endMarked: end?.initialEnd };
    },
  },
  {
    name: "unknown resources and group versions",
    run: async (api) => {
      const paths = [
        "/api/v1/nothings",
        `/api/v1/namespaces/${NS}/nothings`,
        `${CM}/x/badsub`,
        "/apis/quay.redhat.com/v1/nothings",
        "/apis/quay.redhat.com/v2/quayintegrations",
        "/apis/nogroup/v1/things",
      ];
      return await Promise.all(paths.map(async (path) => [path, outcome(await api.call("GET", path))]));
    },
  },
];

Deno.test("the test world answers like the real kube-apiserver", async (t) => {
  const cluster = await startRealCluster();
  const world = await startKubeWorld();
  const real = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  const imitation = jsonClient(world.url, world.adminToken, world.caPem);
  const realWatch = watcher(cluster.url, cluster.adminToken, cluster.caPem);
  const imitationWatch = watcher(world.url, world.adminToken, world.caPem);
  try {
    for (const api of [real, imitation]) {
      await installCrds(api);
      await api.ok("POST", "/api/v1/namespaces", { metadata: { name: NS } });
    }
    const differences: string[] = [];
    for (const probe of probes) {
      await t.step(probe.name, async () => {
        const expected = await probe.run(real, realWatch);
        const actual = await probe.run(imitation, imitationWatch);
        try {
          assert.deepEqual(actual, expected);
        } catch {
          differences.push(`${probe.name}: real ${JSON.stringify(expected)} world ${JSON.stringify(actual)}`);
          throw new Error(`world differs: ${differences.at(-1)}`);
        }
      });
    }
  } finally {
    real.close();
    imitation.close();
    realWatch.close();
    imitationWatch.close();
    await world.close();
    await cluster.close();
  }
});
