/**
 * @module
 * The real kubectl works against the real apiserver with the admin kubeconfig, and the OpenShift
 * image and build APIs are served from our CRDs with OpenShift's names and schemas.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startRealCluster } from "./mod.ts";

const NAMESPACE = "walkthrough";

const IMAGE_STREAM = {
  apiVersion: "image.openshift.io/v1",
  kind: "ImageStream",
  metadata: { name: "app", namespace: NAMESPACE },
  spec: {
    lookupPolicy: { local: false },
    tags: [{
      name: "latest",
      from: { kind: "DockerImage", name: "quay.example.com/openshift_walkthrough/app:latest" },
      importPolicy: { scheduled: true, insecure: false },
      referencePolicy: { type: "Source" },
    }],
  },
};

const BUILD = {
  apiVersion: "build.openshift.io/v1",
  kind: "Build",
  metadata: { name: "app-1", namespace: NAMESPACE },
  spec: {
    serviceAccount: "builder",
    source: { type: "Git", git: { uri: "https://example.com/app.git" } },
    strategy: { type: "Docker", dockerStrategy: { dockerfilePath: "Dockerfile" } },
    output: {
      to: { kind: "ImageStreamTag", name: "app:latest", namespace: NAMESPACE },
      pushSecret: { name: "builder-quay-openshift" },
    },
  },
};

Deno.test("kubectl drives the real apiserver and the OpenShift CRDs are served and validated", async (t) => {
  await using cluster = await startRealCluster();

  await t.step("the server reports the Kubernetes release it was built from", async () => {
    const result = await cluster.kubectl(["version", "-o", "json"]);
    assert.equal(result.code, 0, result.stderr);
    const version = JSON.parse(result.stdout) as { serverVersion: { gitVersion: string; minor: string } };
    assert.match(version.serverVersion.gitVersion, /^v1\.34\.\d+$/);
    assert.equal(version.serverVersion.minor, "34");
  });

  await t.step("the OpenShift kinds are discoverable by plural and short name", async () => {
    const resources = await cluster.kubectl(["api-resources", "-o", "wide", "--no-headers"]);
    assert.equal(resources.code, 0, resources.stderr);
    const byName = new Map(
      resources.stdout.trim().split("\n").map((line) => [line.split(/\s+/)[0], line] as const),
    );
    assert.match(
      byName.get("imagestreams") ?? "",
      /^imagestreams\s+is\s+image\.openshift\.io\/v1\s+true\s+ImageStream/,
    );
    assert.match(
      byName.get("imagestreamimports") ?? "",
      /image\.openshift\.io\/v1\s+true\s+ImageStreamImport/,
    );
    assert.match(byName.get("builds") ?? "", /build\.openshift\.io\/v1\s+true\s+Build\b/);
    assert.match(
      byName.get("buildconfigs") ?? "",
      /^buildconfigs\s+bc\s+build\.openshift\.io\/v1\s+true\s+BuildConfig/,
    );
  });

  await t.step("objects round-trip through kubectl apply and get", async () => {
    assert.equal((await cluster.kubectl(["create", "namespace", NAMESPACE])).code, 0);
    const applied = await cluster.kubectl(["apply", "-f", "-"], {
      stdin: [IMAGE_STREAM, BUILD].map((doc) => stringify(doc)).join("---\n"),
    });
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(
      applied.stdout,
      "imagestream.image.openshift.io/app created\nbuild.build.openshift.io/app-1 created\n",
    );
    const build = await cluster.kubectl(["get", "build", "app-1", "-n", NAMESPACE, "-o", "json"]);
    const got = JSON.parse(build.stdout);
    assert.deepEqual(got.spec.output, BUILD.spec.output);
    assert.deepEqual(got.spec.strategy, BUILD.spec.strategy);
    assert.equal(got.spec.serviceAccount, "builder");
    // OpenShift's build strategy sets phase New on create; the CRD's defaults reproduce it.
    assert.deepEqual(got.status, { phase: "New" });
    const shortName = await cluster.kubectl(["get", "is", "-n", NAMESPACE, "-o", "name"]);
    assert.equal(shortName.stdout, "imagestream.image.openshift.io/app\n");
  });

  await t.step("a field of the wrong type is rejected with the schema's message", async () => {
    const response = await cluster.request(
      `/apis/image.openshift.io/v1/namespaces/${NAMESPACE}/imagestreams`,
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...IMAGE_STREAM, metadata: { name: "bad" }, spec: { tags: "latest" } }),
      },
    );
    assert.equal(response.status, 422);
    const status = await response.json();
    assert.equal(status.reason, "Invalid");
    assert.deepEqual(status.details.causes, [{
      reason: "FieldValueTypeInvalid",
      message: 'Invalid value: "string": spec.tags in body must be of type array: "string"',
      field: "spec.tags",
    }]);
  });

  await t.step("unknown fields are pruned, and refused under strict field validation", async () => {
    const sloppy = {
      ...BUILD,
      metadata: { name: "app-2", namespace: NAMESPACE },
      spec: { ...BUILD.spec, output: { ...BUILD.spec.output, pushSecretName: "typo" } },
    };
    const strict = await cluster.kubectl(["create", "--validate=strict", "-f", "-"], {
      stdin: stringify(sloppy),
    });
    assert.notEqual(strict.code, 0);
    assert.match(strict.stderr, /unknown field "spec\.output\.pushSecretName"/);
    const lax = await cluster.kubectl(["create", "--validate=false", "-f", "-", "-o", "json"], {
      stdin: stringify(sloppy),
    });
    assert.equal(lax.code, 0, lax.stderr);
    assert.deepEqual(Object.keys(JSON.parse(lax.stdout).spec.output).sort(), ["pushSecret", "to"]);
  });

  await t.step("ImageStream status is a subresource, Build status is not (as in OpenShift)", async () => {
    const base = `/apis/image.openshift.io/v1/namespaces/${NAMESPACE}/imagestreams/app`;
    const status = {
      dockerImageRepository: "",
      tags: [{
        tag: "latest",
        items: [{
          created: "2026-01-02T03:04:05Z",
          dockerImageReference: "quay.example.com/openshift_walkthrough/app@sha256:" + "a".repeat(64),
          image: "sha256:" + "a".repeat(64),
          generation: 1,
        }],
      }],
    };
    const ignored = await cluster.request(base, {
      method: "PATCH",
      headers: { "Content-Type": "application/merge-patch+json" },
      body: JSON.stringify({ status }),
    });
    assert.equal((await ignored.json()).status, undefined);
    const written = await cluster.request(`${base}/status`, {
      method: "PATCH",
      headers: { "Content-Type": "application/merge-patch+json" },
      body: JSON.stringify({ status }),
    });
    assert.equal(written.status, 200);
    assert.deepEqual((await written.json()).status, status);

    const buildStatus = await cluster.request(
      `/apis/build.openshift.io/v1/namespaces/${NAMESPACE}/builds/app-1/status`,
    );
    assert.equal(buildStatus.status, 404);
    await buildStatus.body?.cancel();
    const running = await cluster.kubectl([
      "patch",
      "build",
      "app-1",
      "-n",
      NAMESPACE,
      "--type=merge",
      "-p",
      '{"status":{"phase":"Running"}}',
      "-o",
      "jsonpath={.status.phase}",
    ]);
    assert.equal(running.stdout, "Running", running.stderr);
  });
});
