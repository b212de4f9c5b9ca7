/**
 * Builds end to end on the full world: the webhook points a Build at Quay, the world's build pushes
 * with the builder robot, and the operator imports the tag exactly once; a failed build imports
 * nothing; an import refused with 409 is retried with a fresh resourceVersion; an invalid
 * QuayIntegration denies no Build outside the namespaces a valid one selects.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";
import { freePort } from "../cli/process.ts";
import { conflict } from "../world/kube/mod.ts";
import { importImages } from "../world/openshift/mod.ts";

const IMPORTS = "CREATE image.openshift.io/v1/imagestreamimports";

async function bridgeWithWebhook(): Promise<Bridge> {
  return await startBridge({
    openshift: true,
    flags: [
      "--webhook-mode",
      "self-managed",
      "--webhook-host",
      "127.0.0.1",
      "--webhook-port",
      String(freePort()),
    ],
  });
}

async function projectWithBuildConfig(b: Bridge, ns: string, name: string): Promise<void> {
  await b.createProject(ns);
  await synced(b, ns);
  await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
    metadata: { name },
  });
  await b.kube.ok("POST", `/apis/build.openshift.io/v1/namespaces/${ns}/buildconfigs`, {
    metadata: { name },
    spec: {
      source: { type: "Dockerfile", dockerfile: "FROM scratch\n" },
      strategy: { type: "Docker", dockerStrategy: {} },
      output: { to: { kind: "ImageStreamTag", name: `${name}:v1` } },
    },
  });
}

async function startBuild(b: Bridge, ns: string, bc: string): Promise<string> {
  const build = await b.kube.ok(
    "POST",
    `/apis/build.openshift.io/v1/namespaces/${ns}/buildconfigs/${bc}/instantiate`,
    {
      kind: "BuildRequest",
      apiVersion: "build.openshift.io/v1",
      metadata: { name: bc },
    },
  );
  return build.metadata.name;
}

async function finished(b: Bridge, ns: string, build: string) {
  return await until(`${build} finished`, async () => {
    const got = await b.kube.ok("GET", `/apis/build.openshift.io/v1/namespaces/${ns}/builds/${build}`);
    return ["Complete", "Failed"].includes(got.status?.phase) ? got : undefined;
  }, 15_000);
}

function importCount(b: Bridge): number {
  return b.kubeWorld.requestCounts()[IMPORTS] ?? 0;
}

Deno.test("a completed build is imported into its ImageStream exactly once", async () => {
  const b = await bridgeWithWebhook();
  try {
    await projectWithBuildConfig(b, "builds", "app");
    const before = importCount(b);
    const name = await startBuild(b, "builds", "app");
    const build = await finished(b, "builds", name);
    assert.equal(build.status.phase, "Complete", JSON.stringify(build.status));
    assert.equal(build.spec.output.to.name, `${b.quayWorld.registryHost}/openshift_builds/app:v1`);

    const ref = await until("tag v1 imported", async () => {
      const is = await b.kube.ok("GET", "/apis/image.openshift.io/v1/namespaces/builds/imagestreams/app");
      const tag = (is.status?.tags ?? []).find((t: { tag: string }) => t.tag === "v1");
      return tag?.items?.[0]?.dockerImageReference as string | undefined;
    });
    assert.match(ref, new RegExp(`^${b.quayWorld.registryHost}/openshift_builds/app@sha256:`));
    await until("build marked imported", async () => {
      const got = await b.kube.ok("GET", `/apis/build.openshift.io/v1/namespaces/builds/builds/${name}`);
      return Object.entries(got.metadata.annotations ?? {}).some(([k, v]) =>
        k.endsWith("imported") && v === "true"
      );
    });
    // More events on the completed build import nothing more.
    for (let i = 0; i < 3; i++) {
      await b.kube.ok(
        "PATCH",
        `/apis/build.openshift.io/v1/namespaces/builds/builds/${name}`,
        { metadata: { labels: { touched: String(i) } } },
        "application/merge-patch+json",
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(importCount(b) - before, 1);
  } finally {
    await b.close();
  }
});

Deno.test("a failed build imports nothing", async () => {
  const b = await bridgeWithWebhook();
  try {
    await projectWithBuildConfig(b, "failing", "app");
    const before = importCount(b);
    b.quayWorld.faults.failRoute("PUT /v2/{name}/manifests/{reference}", { status: 500 });
    const build = await finished(b, "failing", await startBuild(b, "failing", "app"));
    assert.equal(build.status.phase, "Failed");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(importCount(b) - before, 0);
    const is = await b.kube.ok("GET", "/apis/image.openshift.io/v1/namespaces/failing/imagestreams/app");
    assert.equal((is.status?.tags ?? []).length, 0);
  } finally {
    await b.close();
  }
});

Deno.test("an import refused with 409 is retried with a fresh resourceVersion", async () => {
  const b = await bridgeWithWebhook();
  try {
    await projectWithBuildConfig(b, "conflict", "app");
    // The ImageStream changes under the operator while the build runs: its resourceVersion moves on.
    let conflicts = 0;
    const world = b.world;
    assert.ok(world);
    b.kubeWorld.hooks.onVirtualCreate(
      { group: "image.openshift.io", resource: "imagestreamimports" },
      (req) => {
        if (conflicts++ === 0) {
          throw conflict({ group: "image.openshift.io", resource: "imagestreams" }, "app");
        }
        return importImages({
          client: world.openshift.client,
          namespace: req.namespace,
          request: req.body as Parameters<typeof importImages>[0]["request"],
          registryCaPem: world.quayCaPem,
          dryRun: req.dryRun,
        });
      },
    );
    const build = await finished(b, "conflict", await startBuild(b, "conflict", "app"));
    assert.equal(build.status.phase, "Complete");
    await until("tag v1 imported after a conflict", async () => {
      const is = await b.kube.ok("GET", "/apis/image.openshift.io/v1/namespaces/conflict/imagestreams/app");
      return (is.status?.tags ?? []).some((t: { tag: string }) => t.tag === "v1");
    });
    assert.ok(conflicts >= 2);
  } finally {
    await b.close();
  }
});

Deno.test("an invalid QuayIntegration stops no build: unselected namespaces keep the internal registry, a valid one's builds go to Quay", async () => {
  const b = await bridgeWithWebhook();
  try {
    // `quay` selects only `managed`; `typo` (a clusterID Quay cannot use) would select everything else.
    await b.applyIntegration("quay", b.integrationSpec({ allowlistNamespaces: ["managed"] }));
    await b.applyIntegration(
      "typo",
      b.integrationSpec({ clusterID: "x.-y", denylistNamespaces: ["managed"] }),
    );
    await projectWithBuildConfig(b, "managed", "app");
    await b.createProject("elsewhere");
    await b.kube.ok("POST", "/apis/build.openshift.io/v1/namespaces/elsewhere/buildconfigs", {
      metadata: { name: "app" },
      spec: {
        source: { type: "Dockerfile", dockerfile: "FROM scratch\n" },
        strategy: { type: "Docker", dockerStrategy: {} },
        output: { to: { kind: "ImageStreamTag", name: "app:v1" } },
      },
    });

    const elsewhere = await b.kube.ok(
      "GET",
      `/apis/build.openshift.io/v1/namespaces/elsewhere/builds/${await startBuild(b, "elsewhere", "app")}`,
    );
    assert.deepEqual(
      elsewhere.spec.output.to,
      { kind: "ImageStreamTag", name: "app:v1" },
      "admitted unchanged",
    );
    const managed = await b.kube.ok(
      "GET",
      `/apis/build.openshift.io/v1/namespaces/managed/builds/${await startBuild(b, "managed", "app")}`,
    );
    assert.equal(managed.spec.output.to.name, `${b.quayWorld.registryHost}/openshift_managed/app:v1`);

    // The namespace says which QuayIntegration is invalid and why.
    const event = await until("IntegrationInvalid Event", async () => {
      const events = await b.kube.ok("GET", "/api/v1/namespaces/default/events");
      return (events.items as { reason: string; message: string; involvedObject: { name: string } }[])
        .find((e) => e.reason === "IntegrationInvalid" && e.involvedObject.name === "elsewhere");
    });
    assert.match(
      event.message,
      /QuayIntegration typo would select this namespace but is invalid \(InvalidClusterID/,
    );
  } finally {
    await b.close();
  }
});
