/**
 * @module
 * The test world's OpenShift behaviours run unchanged against a real kube-apiserver with the
 * OpenShift CRDs: proof that they rely only on the wire (list+watch, 409s, `/status` where the
 * subresource exists and a full update where a CRD lacks it), not on the in-process world.
 */
import assert from "node:assert/strict";
import {
  instantiateBuildConfig,
  KubeClient,
  KubeError,
  type KubeObject,
  MCS_ANNOTATION,
  startOpenShiftBehaviours,
} from "../world/openshift/mod.ts";
import { startQuayWorld } from "../world/quay/mod.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { startRealCluster } from "./mod.ts";

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function dockerConfigSecret(name: string, host: string, username: string, password: string): KubeObject {
  const config = JSON.stringify({ auths: { [host]: { auth: btoa(`${username}:${password}`) } } });
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": btoa(config) },
  };
}

Deno.test("OpenShift behaviours work against a real kube-apiserver with the OpenShift CRDs", async () => {
  await using cluster = await startRealCluster();
  const quay = await startQuayWorld();
  const openshift = startOpenShiftBehaviours({
    url: cluster.url,
    token: cluster.adminToken,
    caPem: cluster.caPem,
    registryCaPem: quay.caPem,
    mode: "apiserver",
    sccDelayMs: 50,
    buildStepMs: 10,
  });
  const kube = new KubeClient({ url: cluster.url, token: cluster.adminToken, caPem: cluster.caPem });
  const http = Deno.createHttpClient({ caCerts: [quay.caPem] });
  const quayCall = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${quay.url}/api/v1${path}`, {
      method,
      client: http,
      headers: { authorization: `Bearer ${quay.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  try {
    // A project: service accounts (the controller manager's `default` tolerated) and the annotation.
    await kube.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "proj" },
    });
    const ns = await waitFor("the MCS annotation", async () => {
      const ns = await kube.get("/api/v1/namespaces/proj");
      return ns?.metadata.annotations?.[MCS_ANNOTATION] ? ns : undefined;
    });
    assert.match(ns.metadata.annotations?.[MCS_ANNOTATION] ?? "", /^s0:c\d+,c\d+$/);
    const sas = await kube.request("GET", "/api/v1/namespaces/proj/serviceaccounts");
    const names = (sas.items as KubeObject[]).map((sa) => sa.metadata.name).sort();
    assert.deepEqual(names, ["builder", "default", "deployer"]);

    // Quay: an org, a robot with write on a repo, its credentials as the push secret.
    await quayCall("POST", "/organization/", { name: "proj", email: "proj@example.com" });
    const robot = await quayCall("PUT", "/organization/proj/robots/builder") as {
      name: string;
      token: string;
    };
    await quayCall("POST", "/repository", {
      namespace: "proj",
      repository: "app",
      visibility: "private",
      description: "",
      repo_kind: "image",
    });
    await quayCall("PUT", `/repository/proj/app/permissions/user/${robot.name}`, { role: "write" });
    await kube.create(
      "/api/v1/namespaces/proj/secrets",
      dockerConfigSecret("push", quay.registryHost, robot.name, robot.token),
    );

    // BuildConfig instantiation without the subresource; the CRD has no status subresource either.
    await kube.create("/apis/build.openshift.io/v1/namespaces/proj/buildconfigs", {
      apiVersion: "build.openshift.io/v1",
      kind: "BuildConfig",
      metadata: { name: "app" },
      spec: {
        strategy: { type: "Docker", dockerStrategy: {} },
        source: { type: "Dockerfile", dockerfile: "FROM scratch" },
        output: {
          to: { kind: "DockerImage", name: `${quay.registryHost}/proj/app:latest` },
          pushSecret: { name: "push" },
        },
      },
    });
    const first = await instantiateBuildConfig(kube, "proj", "app");
    const second = await instantiateBuildConfig(kube, "proj", "app");
    assert.deepEqual([first.metadata.name, second.metadata.name], ["app-1", "app-2"]);
    assert.equal(second.metadata.annotations?.["openshift.io/build.number"], "2");
    const build = await waitFor("app-2 to finish", async () => {
      const b = await kube.get("/apis/build.openshift.io/v1/namespaces/proj/builds/app-2");
      return ["Complete", "Failed"].includes(b?.status?.phase) ? b : undefined;
    });
    assert.equal(build.status.phase, "Complete", JSON.stringify(build.status));
    assert.match(build.status.output?.to?.imageDigest ?? "", /^sha256:/);

    // A stored ImageStreamImport gets its status, and the ImageStream its tag.
    const pushed = await pushImage({
      registryUrl: quay.url,
      caPem: quay.caPem,
      repository: "proj/app",
      tag: "v1",
      username: robot.name,
      password: robot.token,
    });
    await kube.create(
      "/api/v1/namespaces/proj/secrets",
      dockerConfigSecret("pull", quay.registryHost, robot.name, robot.token),
    );
    // ImageStreamImport answers as OpenShift's virtual resource (the behaviours' admission webhook):
    // the create returns the status, names the ImageStream's resourceVersion as a precondition
    // (409 when stale) and can be posted again under the same name.
    await openshift.ready;
    const importRequest = (resourceVersion?: string) => ({
      apiVersion: "image.openshift.io/v1",
      kind: "ImageStreamImport",
      metadata: { name: "app", ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        import: true,
        images: [{
          from: { kind: "DockerImage", name: `${quay.registryHost}/proj/app:v1` },
          to: { name: "v1" },
        }],
      },
    });
    const imports = "/apis/image.openshift.io/v1/namespaces/proj/imagestreamimports";
    const imported = await kube.create(imports, importRequest());
    assert.equal(imported.status?.images?.[0]?.status?.status, "Success", JSON.stringify(imported.status));
    const stream = await kube.get("/apis/image.openshift.io/v1/namespaces/proj/imagestreams/app");
    const tag = stream?.status?.tags?.find((t: { tag: string }) => t.tag === "v1");
    assert.equal(tag?.items?.[0]?.image, pushed.digest);
    await assert.rejects(
      kube.create(imports, importRequest("1")),
      (e: unknown) => e instanceof KubeError && e.status === 409,
    );
    const again = await kube.create(imports, importRequest(stream?.metadata.resourceVersion));
    assert.equal(again.status?.images?.[0]?.status?.status, "Success", JSON.stringify(again.status));
  } finally {
    kube.close();
    http.close();
    await openshift.stop();
    await quay.close();
  }
});
