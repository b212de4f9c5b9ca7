/**
 * OpenShift's behaviours in the composed world: projects, BuildConfig instantiation, builds that push
 * to Quay with the push secret OpenShift resolves, ImageStreamImport, pulls as a ServiceAccount, and
 * the `deno task world` entry point. Everything goes over HTTPS, as the operator would see it.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "./mod.ts";
import {
  KubeClient,
  KubeError,
  type KubeObject,
  MCS_ANNOTATION,
  pullAsServiceAccount,
} from "./openshift/mod.ts";
import { pullManifest, pushImage } from "./quay/registry_client.ts";

const BUILDS = (ns: string) => `/apis/build.openshift.io/v1/namespaces/${ns}/builds`;
const BUILD_CONFIGS = (ns: string) => `/apis/build.openshift.io/v1/namespaces/${ns}/buildconfigs`;
const STREAMS = (ns: string) => `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`;
const IMPORTS = (ns: string) => `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreamimports`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withWorld(
  fn: (world: World, kube: KubeClient) => Promise<void>,
  sccDelayMs = 20,
): Promise<void> {
  const world = await startWorld({ openshift: { sccDelayMs, buildStepMs: 10 } });
  const kube = new KubeClient({ url: world.kubeUrl, token: world.adminToken, caPem: world.kubeCaPem });
  try {
    await fn(world, kube);
    await world.openshift.stop();
    // The server notices a closed watch when its stream is cancelled; give it a moment.
    await waitFor(
      "watches to close",
      () => Promise.resolve(world.kube.openWatches() === 0 ? true : undefined),
      2000,
    );
  } finally {
    kube.close();
    await world.close();
  }
}

/** Quay REST call as the superuser; throws unless the status is the expected one. */
async function quay(
  world: World,
  method: string,
  path: string,
  body: unknown,
  expect: number,
): Promise<unknown> {
  const client = Deno.createHttpClient({ caCerts: [world.quayCaPem] });
  try {
    const response = await fetch(`${world.quayUrl}/api/v1${path}`, {
      method,
      client,
      headers: { authorization: `Bearer ${world.quayToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.equal(response.status, expect, `${method} ${path}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  } finally {
    client.close();
  }
}

/** An org with a private repo `app` and a robot with `role` on it; returns the robot's credentials. */
async function quayRobot(world: World, org: string, short: string, role: string) {
  await quay(world, "POST", "/organization/", { name: org, email: `${org}@example.com` }, 201);
  const robot = await quay(world, "PUT", `/organization/${org}/robots/${short}`, undefined, 201) as {
    name: string;
    token: string;
  };
  await quay(world, "POST", "/repository", {
    namespace: org,
    repository: "app",
    visibility: "private",
    description: "",
    repo_kind: "image",
  }, 201);
  await quay(world, "PUT", `/repository/${org}/app/permissions/user/${robot.name}`, { role }, 200);
  return robot;
}

function dockerConfigSecret(name: string, host: string, username: string, password: string): KubeObject {
  const auth = btoa(`${username}:${password}`);
  const config = JSON.stringify({ auths: { [host]: { auth } } });
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": btoa(config) },
  };
}

async function createNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

function dockerBuild(name: string, to: { kind: string; name: string }, pushSecret?: string): KubeObject {
  return {
    apiVersion: "build.openshift.io/v1",
    kind: "Build",
    metadata: { name },
    spec: {
      strategy: { type: "Docker", dockerStrategy: {} },
      source: { type: "Dockerfile", dockerfile: "FROM scratch" },
      output: { to, ...(pushSecret ? { pushSecret: { name: pushSecret } } : {}) },
    },
  };
}

async function finished(kube: KubeClient, ns: string, name: string): Promise<KubeObject> {
  return await waitFor(`build ${name} to finish`, async () => {
    const build = await kube.get(`${BUILDS(ns)}/${name}`);
    return ["Complete", "Failed"].includes(build?.status?.phase) ? build : undefined;
  });
}

Deno.test("a new project gets its service accounts, then the SCC annotations", async () => {
  await withWorld(async (_world, kube) => {
    await createNamespace(kube, "team-a");
    const seen = await waitFor("service accounts", async () => {
      const list = await kube.request("GET", "/api/v1/namespaces/team-a/serviceaccounts");
      const names = (list.items as KubeObject[]).map((sa) => sa.metadata.name).sort();
      if (names.length < 3) return undefined;
      const ns = await kube.get("/api/v1/namespaces/team-a");
      return { names, annotated: Boolean(ns?.metadata.annotations?.[MCS_ANNOTATION]) };
    });
    assert.deepEqual(seen.names, ["builder", "default", "deployer"]);
    assert.equal(seen.annotated, false, "the annotation comes after the delay");
    const ns = await waitFor("the MCS annotation", async () => {
      const ns = await kube.get("/api/v1/namespaces/team-a");
      return ns?.metadata.annotations?.[MCS_ANNOTATION] ? ns : undefined;
    });
    const annotations = ns.metadata.annotations ?? {};
    assert.match(annotations[MCS_ANNOTATION] ?? "", /^s0:c\d+,c\d+$/);
    assert.match(annotations["openshift.io/sa.scc.uid-range"] ?? "", /^\d+\/10000$/);
    assert.match(annotations["openshift.io/sa.scc.supplemental-groups"] ?? "", /^\d+\/10000$/);
  }, 300);
});

Deno.test("instantiating a BuildConfig creates builds -1 and -2 with OpenShift's labels", async () => {
  await withWorld(async (_world, kube) => {
    await createNamespace(kube, "bc");
    await kube.create(BUILD_CONFIGS("bc"), {
      apiVersion: "build.openshift.io/v1",
      kind: "BuildConfig",
      metadata: { name: "app", labels: { app: "app" } },
      spec: {
        strategy: { type: "Docker", dockerStrategy: {} },
        source: { type: "Git", git: { uri: "https://example.com/app.git" } },
        output: { to: { kind: "ImageStreamTag", name: "app:latest" } },
      },
    });
    const request = { apiVersion: "build.openshift.io/v1", kind: "BuildRequest", metadata: { name: "app" } };
    const first = await kube.create(`${BUILD_CONFIGS("bc")}/app/instantiate`, request);
    const second = await kube.create(`${BUILD_CONFIGS("bc")}/app/instantiate`, request);
    assert.equal(first.kind, "Build");
    assert.deepEqual([first.metadata.name, second.metadata.name], ["app-1", "app-2"]);
    assert.equal(second.metadata.labels?.buildconfig, "app");
    assert.equal(second.metadata.labels?.["openshift.io/build-config.name"], "app");
    assert.equal(second.metadata.labels?.app, "app");
    assert.equal(second.metadata.annotations?.["openshift.io/build.number"], "2");
    assert.equal(second.spec.output.to.name, "app:latest");
    assert.equal(second.spec.source.git.uri, "https://example.com/app.git");
    const bc = await kube.get(`${BUILD_CONFIGS("bc")}/app`);
    assert.equal(bc?.status?.lastVersion, 2);

    // An ImageStreamTag output completes without a push, pointing at the internal registry.
    const done = await finished(kube, "bc", "app-1");
    assert.equal(done.status.phase, "Complete");
    assert.equal(
      done.status.outputDockerImageReference,
      "image-registry.openshift-image-registry.svc:5000/bc/app:latest",
    );

    await assert.rejects(
      kube.create(`${BUILD_CONFIGS("bc")}/missing/instantiate`, {
        ...request,
        metadata: { name: "missing" },
      }),
      (e: unknown) => e instanceof KubeError && e.status === 404,
    );
  });
});

Deno.test("a build pushes to Quay with its push secret, or with the builder SA's secret, and completes", async () => {
  await withWorld(async (world, kube) => {
    const robot = await quayRobot(world, "proj", "builder", "write");
    await createNamespace(kube, "proj");
    await kube.create(
      "/api/v1/namespaces/proj/secrets",
      dockerConfigSecret("push", world.registryHost, robot.name, robot.token),
    );
    const image = `${world.registryHost}/proj/app:v1`;
    await kube.create(BUILDS("proj"), dockerBuild("b1", { kind: "DockerImage", name: image }, "push"));
    const phases = new Set<string>();
    const build = await waitFor("b1 to finish", async () => {
      const b = await kube.get(`${BUILDS("proj")}/b1`);
      phases.add(b?.status?.phase ?? "New");
      return ["Complete", "Failed"].includes(b?.status?.phase) ? b : undefined;
    });
    assert.equal(build.status.phase, "Complete", JSON.stringify(build.status));
    assert.ok(phases.has("Pending") || phases.has("Running"), [...phases].join());
    assert.equal(build.status.outputDockerImageReference, image);
    const pulled = await pullManifest({
      registryUrl: world.quayUrl,
      caPem: world.quayCaPem,
      repository: "proj/app",
      reference: "v1",
      username: robot.name,
      password: robot.token,
    });
    assert.equal(build.status.output.to.imageDigest, pulled.digest);

    // Without pushSecret, OpenShift uses the builder SA's linked secret for the registry host.
    await waitFor("builder SA", () => kube.get("/api/v1/namespaces/proj/serviceaccounts/builder"));
    await kube.mergePatch("/api/v1/namespaces/proj/serviceaccounts/builder", { secrets: [{ name: "push" }] });
    await kube.create(
      BUILDS("proj"),
      dockerBuild("b2", { kind: "DockerImage", name: `${world.registryHost}/proj/app:v2` }),
    );
    assert.equal((await finished(kube, "proj", "b2")).status.phase, "Complete");
  });
});

Deno.test("a build whose push secret Quay refuses fails with PushImageToRegistryFailed", async () => {
  await withWorld(async (world, kube) => {
    const robot = await quayRobot(world, "ro", "reader", "read");
    await createNamespace(kube, "ro");
    await kube.create(
      "/api/v1/namespaces/ro/secrets",
      dockerConfigSecret("bad", world.registryHost, robot.name, "nope"),
    );
    await kube.create(
      "/api/v1/namespaces/ro/secrets",
      dockerConfigSecret("reader", world.registryHost, robot.name, robot.token),
    );
    const to = { kind: "DockerImage", name: `${world.registryHost}/ro/app:latest` };
    await kube.create(BUILDS("ro"), dockerBuild("wrong-password", to, "bad"));
    await kube.create(BUILDS("ro"), dockerBuild("read-only", to, "reader"));
    for (const name of ["wrong-password", "read-only"]) {
      const build = await finished(kube, "ro", name);
      assert.equal(build.status.phase, "Failed", name);
      assert.equal(build.status.reason, "PushImageToRegistryFailed");
      assert.equal(build.status.message, "Failed to push the image to the registry.");
      assert.ok(build.status.logSnippet, "the registry's refusal is kept");
    }
  });
});

Deno.test("ImageStreamImport pulls with the namespace's pull secrets and fills the ImageStream", async () => {
  await withWorld(async (world, kube) => {
    const robot = await quayRobot(world, "imp", "puller", "write");
    const pushed = await pushImage({
      registryUrl: world.quayUrl,
      caPem: world.quayCaPem,
      repository: "imp/app",
      tag: "v1",
      username: robot.name,
      password: robot.token,
    });
    await createNamespace(kube, "imp");
    const from = `${world.registryHost}/imp/app:v1`;
    const request = (rv?: string) => ({
      apiVersion: "image.openshift.io/v1",
      kind: "ImageStreamImport",
      metadata: { name: "app", ...(rv ? { resourceVersion: rv } : {}) },
      spec: {
        import: true,
        images: [{
          from: { kind: "DockerImage", name: from },
          to: { name: "v1" },
          referencePolicy: { type: "Local" },
          importPolicy: { scheduled: true },
        }],
      },
    });

    const denied = await kube.create(IMPORTS("imp"), request());
    assert.equal(denied.status.images[0].status.status, "Failure");
    assert.equal(denied.status.images[0].status.reason, "Unauthorized");
    assert.equal(await kube.get(`${STREAMS("imp")}/app`), undefined, "a failed import writes nothing");

    await kube.create(
      "/api/v1/namespaces/imp/secrets",
      dockerConfigSecret("pull", world.registryHost, robot.name, robot.token),
    );
    const answer = await kube.create(IMPORTS("imp"), request());
    assert.equal(answer.status.images[0].status.status, "Success", JSON.stringify(answer.status));
    const reference = `${world.registryHost}/imp/app@${pushed.digest}`;
    assert.equal(answer.status.images[0].image.dockerImageReference, reference);
    const stream = await kube.get(`${STREAMS("imp")}/app`);
    assert.ok(stream);
    const specTag = stream.spec.tags.find((t: { name: string }) => t.name === "v1");
    assert.deepEqual(specTag.from, { kind: "DockerImage", name: from });
    assert.deepEqual(specTag.referencePolicy, { type: "Local" });
    assert.deepEqual(specTag.importPolicy, { scheduled: true });
    const statusTag = stream.status.tags.find((t: { tag: string }) => t.tag === "v1");
    assert.equal(statusTag.items[0].dockerImageReference, reference);
    assert.equal(statusTag.items[0].image, pushed.digest);
    assert.equal(answer.status.import.metadata.resourceVersion, stream.metadata.resourceVersion);

    // A request naming an older ImageStream is refused, as OpenShift's optimistic lock does.
    await assert.rejects(
      kube.create(IMPORTS("imp"), request("1")),
      (e: unknown) => e instanceof KubeError && e.status === 409 && e.reason === "Conflict",
    );
    const current = await kube.create(IMPORTS("imp"), request(stream.metadata.resourceVersion));
    assert.equal(current.status.images[0].status.status, "Success");
  });
});

Deno.test("pullAsServiceAccount pulls with the SA's imagePullSecrets and reports a refusal", async () => {
  await withWorld(async (world, kube) => {
    const robot = await quayRobot(world, "dep", "deployer", "write");
    await pushImage({
      registryUrl: world.quayUrl,
      caPem: world.quayCaPem,
      repository: "dep/app",
      tag: "latest",
      username: robot.name,
      password: robot.token,
    });
    await createNamespace(kube, "dep");
    await waitFor("default SA", () => kube.get("/api/v1/namespaces/dep/serviceaccounts/default"));
    await waitFor("deployer SA", () => kube.get("/api/v1/namespaces/dep/serviceaccounts/deployer"));
    await kube.create(
      "/api/v1/namespaces/dep/secrets",
      dockerConfigSecret("pull", world.registryHost, robot.name, robot.token),
    );
    await kube.mergePatch("/api/v1/namespaces/dep/serviceaccounts/deployer", {
      imagePullSecrets: [{ name: "pull" }],
    });
    const image = `${world.registryHost}/dep/app:latest`;
    const ok = await pullAsServiceAccount({ kube, ns: "dep", sa: "deployer", image, caPem: world.quayCaPem });
    assert.equal(ok.ok, true, ok.message);
    assert.match(ok.digest ?? "", /^sha256:/);
    const denied = await pullAsServiceAccount({
      kube: { url: world.kubeUrl, token: world.adminToken, caPem: world.kubeCaPem },
      ns: "dep",
      sa: "default",
      image,
      caPem: world.quayCaPem,
    });
    assert.equal(denied.ok, false);
    assert.ok([401, 403].includes(denied.status), `${denied.status} ${denied.message}`);
  });
});

Deno.test("deno task world serves, writes the state file and says `world ready`, then stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const stateFile = `${dir}/state.json`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      new URL("./main.ts", import.meta.url).pathname,
      "--state-out",
      stateFile,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream());
  const errors: string[] = [];
  const draining = (async () => {
    for await (const chunk of stderr) errors.push(chunk);
  })();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.equal(out, "world ready\n", errors.join(""));
    const state = JSON.parse(await Deno.readTextFile(stateFile));
    assert.deepEqual(Object.keys(state).sort(), [
      "caFile",
      "kubeconfig",
      "quayToken",
      "quayUrl",
      "registryHost",
    ]);
    const kubeconfig = await Deno.readTextFile(state.kubeconfig);
    const server = /server: (\S+)/.exec(kubeconfig)?.[1];
    const token = /token: (\S+)/.exec(kubeconfig)?.[1] ?? "";
    const ca = new TextDecoder().decode(
      Uint8Array.fromBase64(/certificate-authority-data: (\S+)/.exec(kubeconfig)?.[1] ?? ""),
    );
    const kube = new KubeClient({ url: server ?? "", token, caPem: ca });
    try {
      const version = await kube.request("GET", "/version");
      assert.ok(version.gitVersion);
    } finally {
      kube.close();
    }
    const quayCa = await Deno.readTextFile(state.caFile);
    const http = Deno.createHttpClient({ caCerts: [quayCa] });
    const user = await fetch(`${state.quayUrl}/api/v1/user/`, {
      client: http,
      headers: { authorization: `Bearer ${state.quayToken}` },
    });
    assert.equal(user.status, 200);
    await user.body?.cancel();
    http.close();
    child.kill("SIGTERM");
    const rest = await reader.read();
    assert.ok(rest.done || !rest.value?.trim(), "nothing else on stdout");
    reader.releaseLock();
    const status = await child.status;
    assert.equal(status.code, 0, errors.join(""));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await draining;
    await Deno.remove(dir, { recursive: true });
  }
});
