/**
 * The webhook as `quay-bridge run` starts it (self-managed certificates, outside a cluster): the
 * operator creates the CA and serving certificate in its Secret, registers the
 * MutatingWebhookConfiguration by URL with that CA, and the in-process API server calls it on every
 * Build CREATE. Builds in provisioned namespaces are rewritten to push to Quay with the builder
 * robot's Secret; a namespace not provisioned yet is provisioned within the admission; an
 * unmanaged namespace's Builds pass unchanged; rotations under load drop nothing; a restart
 * reuses the stored CA.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { runOperator } from "../../src/cli/run.ts";
import type { WebhookHandle } from "../../src/cli/webhook_wiring.ts";
import { parseConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import type { Metrics } from "../../src/ops/metrics.ts";
import { type KubeWorld, startKubeWorld } from "../world/kube/mod.ts";
import { type QuayWorld, startQuayWorld } from "../world/quay/mod.ts";

const NS = "quay-bridge";
const SECRET = "quay-bridge-webhook-certs";
const MWC = "quay-bridge";

// deno-lint-ignore no-explicit-any
type Json = any;

interface Api {
  call(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; body: Json }>;
  ok(method: string, path: string, body?: unknown, contentType?: string): Promise<Json>;
  close(): void;
}

function api(world: KubeWorld): Api {
  const http = Deno.createHttpClient({ caCerts: [world.caPem] });
  const call = async (method: string, path: string, body?: unknown, contentType = "application/json") => {
    const response = await fetch(world.url + path, {
      method,
      client: http,
      headers: {
        authorization: `Bearer ${world.adminToken}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": contentType }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    async ok(method, path, body, contentType) {
      const r = await call(method, path, body, contentType);
      if (r.status < 200 || r.status > 299) {
        throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      return r.body;
    },
    close: () => http.close(),
  };
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

function decode(b64: string): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(b64));
}

interface Running {
  webhook: WebhookHandle;
  metrics: Metrics;
  stop(): Promise<number>;
}

interface Setup {
  kube: KubeWorld;
  quay: QuayWorld;
  client: Api;
  kubeconfig: string;
  logs: string[];
  start(): Promise<Running>;
  close(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const kube = await startKubeWorld();
  const quay = await startQuayWorld();
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-wiring-" });
  const kubeconfig = await kube.writeKubeconfig(`${dir}/kubeconfig`);
  const client = api(kube);
  const logs: string[] = [];
  const running: Running[] = [];

  await client.ok("POST", "/api/v1/namespaces", { metadata: { name: NS } });
  await client.ok("POST", `/api/v1/namespaces/${NS}/secrets`, {
    metadata: { name: "quay-integration" },
    stringData: { token: quay.adminToken },
  });
  const crdDir = new URL("../../deploy/crds/", import.meta.url);
  for (const entry of Deno.readDirSync(crdDir)) {
    for (const doc of parseAllDocuments(await Deno.readTextFile(new URL(entry.name, crdDir)))) {
      const crd = doc.toJS();
      if (crd?.kind === "CustomResourceDefinition") {
        await client.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
      }
    }
  }
  await until(
    "CRD served",
    async () => (await client.call("GET", "/apis/quay.redhat.com/v1/quayintegrations")).status === 200,
  );
  await client.ok("POST", "/apis/quay.redhat.com/v1/quayintegrations", {
    apiVersion: "quay.redhat.com/v1",
    kind: "QuayIntegration",
    metadata: { name: "quay" },
    spec: {
      clusterID: "openshift",
      credentialsSecret: { namespace: NS, name: "quay-integration", key: "token" },
      quayHostname: quay.url,
      caBundle: quay.caPem,
      denylistNamespaces: ["outside"],
    },
  });

  return {
    kube,
    quay,
    client,
    kubeconfig,
    logs,
    async start() {
      const config = parseConfig({
        args: [
          "run",
          "--kubeconfig",
          kubeconfig,
          "--namespace",
          NS,
          "--ops-port",
          "0",
          "--leader-elect",
          "false",
          "--webhook-mode",
          "self-managed",
          "--webhook-port",
          "0",
          "--webhook-host",
          "127.0.0.1",
          "--log-level",
          "info",
        ],
        env: () => undefined,
        inClusterNamespace: () => undefined,
      });
      const abort = new AbortController();
      let started!: (h: { webhook: WebhookHandle | undefined; metrics: Metrics }) => void;
      const ready = new Promise<{ webhook: WebhookHandle | undefined; metrics: Metrics }>((r) => started = r);
      const exited = runOperator({
        config,
        logger: createLogger({ level: "info", sink: (line) => logs.push(line) }),
        signal: abort.signal,
        onStarted: (h) => started(h),
      });
      const h = await Promise.race([
        ready,
        exited.then((code) => {
          throw new Error(`operator exited with ${code}: ${logs.slice(-5).join("\n")}`);
        }),
      ]);
      assert.ok(h.webhook, "the webhook is started in self-managed mode");
      const r: Running = {
        webhook: h.webhook,
        metrics: h.metrics,
        stop: async () => {
          abort.abort();
          const code = await exited;
          running.splice(running.indexOf(r), 1);
          return code;
        },
      };
      running.push(r);
      return r;
    },
    async close() {
      for (const r of [...running]) await r.stop();
      client.close();
      await quay.close();
      await kube.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A project as OpenShift makes it: the service accounts, then the SCC annotation (unless told not to). */
async function createProject(client: Api, name: string, ready = true): Promise<void> {
  await client.ok("POST", "/api/v1/namespaces", { metadata: { name } });
  for (const sa of ["builder", "default", "deployer"]) {
    await client.ok("POST", `/api/v1/namespaces/${name}/serviceaccounts`, { metadata: { name: sa } });
  }
  if (ready) await markReady(client, name);
}

async function markReady(client: Api, name: string): Promise<void> {
  await client.ok(
    "PATCH",
    `/api/v1/namespaces/${name}`,
    { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c26,c15" } } },
    "application/merge-patch+json",
  );
}

function build(name: string) {
  return {
    apiVersion: "build.openshift.io/v1",
    kind: "Build",
    metadata: { name },
    spec: {
      strategy: { type: "Docker", dockerStrategy: {} },
      source: { type: "Dockerfile", dockerfile: "FROM scratch" },
      output: { to: { kind: "ImageStreamTag", name: "app:latest" } },
    },
  };
}

async function createBuild(client: Api, namespace: string, name: string): Promise<Json> {
  return await client.ok("POST", `/apis/build.openshift.io/v1/namespaces/${namespace}/builds`, build(name));
}

function assertRewritten(stored: Json, quay: QuayWorld, namespace: string): void {
  assert.deepEqual(stored.spec.output.to, {
    kind: "DockerImage",
    name: `${quay.registryHost}/openshift_${namespace}/app:latest`,
  });
  assert.deepEqual(stored.spec.output.pushSecret, { name: "builder-quay-openshift" });
  assert.equal(
    stored.metadata.annotations["quay-registry-operator.quay.redhat.com/quay-registry-operator-managed"],
    "true",
  );
  assert.equal(
    stored.metadata.annotations["quay-registry-operator.quay.redhat.com/destination-imagestream"],
    `${namespace}/app:latest`,
  );
}

async function webhookState(
  client: Api,
): Promise<{ ca: string; tls: string; bundles: string[]; url: string[] }> {
  const secret = await client.ok("GET", `/api/v1/namespaces/${NS}/secrets/${SECRET}`);
  const mwc = await client.ok(
    "GET",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`,
  );
  return {
    ca: decode(secret.data["ca.crt"]),
    tls: decode(secret.data["tls.crt"]),
    bundles: mwc.webhooks.map((w: Json) => decode(w.clientConfig.caBundle)),
    url: mwc.webhooks.map((w: Json) => w.clientConfig.url),
  };
}

function admissions(metrics: Metrics, outcome: string): number {
  const line = metrics.render().split("\n").find((l) =>
    l.startsWith(`quay_bridge_webhook_admissions_total{outcome="${outcome}"}`)
  );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

Deno.test("self-managed webhook: Builds are pointed at Quay, provisioned on demand, rotated under load, CA reused", async (t) => {
  const s = await setup();
  try {
    let op = await s.start();
    const port = op.webhook.addr?.port;

    await t.step(
      "the Secret holds the CA and the configuration trusts it and calls the webhook's URL",
      async () => {
        const state = await until("webhook configuration", async () => {
          const r = await s.client.call(
            "GET",
            `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`,
          );
          return r.status === 200 ? await webhookState(s.client) : undefined;
        });
        assert.ok(state.ca.includes("BEGIN CERTIFICATE"));
        assert.deepEqual(state.bundles, [state.ca]);
        assert.deepEqual(state.url, [`https://127.0.0.1:${port}/admissionwebhook`]);
        const secret = await s.client.ok("GET", `/api/v1/namespaces/${NS}/secrets/${SECRET}`);
        assert.equal(secret.type, "kubernetes.io/tls");
        assert.ok(secret.data["ca.key"] && secret.data["tls.key"]);
        assert.ok(op.webhook.serving());
      },
    );

    await t.step("a Build in a provisioned namespace pushes to Quay with the builder robot", async () => {
      await createProject(s.client, "team-a");
      await until(
        "push Secret",
        async () =>
          (await s.client.call("GET", "/api/v1/namespaces/team-a/secrets/builder-quay-openshift")).status ===
            200,
      );
      const created = await createBuild(s.client, "team-a", "app-1");
      assertRewritten(created, s.quay, "team-a");
      const stored = await s.client.ok("GET", "/apis/build.openshift.io/v1/namespaces/team-a/builds/app-1");
      assertRewritten(stored, s.quay, "team-a");
    });

    await t.step(
      "a Build in a namespace not provisioned yet is provisioned within the admission",
      async () => {
        await createProject(s.client, "team-b", false);
        const started = Date.now();
        const pending = createBuild(s.client, "team-b", "app-1");
        // The project becomes ready while the admission waits.
        await new Promise((r) => setTimeout(r, 300));
        await markReady(s.client, "team-b");
        const created = await pending;
        assertRewritten(created, s.quay, "team-b");
        assert.ok(Date.now() - started < 7_000, `took ${Date.now() - started} ms`);
      },
    );

    await t.step("a Build in an unmanaged namespace is unchanged", async () => {
      await createProject(s.client, "outside");
      const created = await createBuild(s.client, "outside", "app-1");
      assert.deepEqual(created.spec.output.to, { kind: "ImageStreamTag", name: "app:latest" });
      assert.equal(created.spec.output.pushSecret, undefined);
      assert.ok(admissions(op.metrics, "allowed") >= 1);
    });

    await t.step("rotations under load drop no admission", async () => {
      const before = await webhookState(s.client);
      const total = 120;
      let next = 0;
      const failures: string[] = [];
      const worker = async () => {
        while (next < total) {
          const i = next++;
          try {
            const created = await createBuild(s.client, "team-a", `load-${i}`);
            if (created.spec.output.to.kind !== "DockerImage") failures.push(`load-${i} not rewritten`);
          } catch (error) {
            failures.push(String(error));
          }
        }
      };
      const rotations = (async () => {
        for (let i = 0; i < 4; i++) {
          await new Promise((r) => setTimeout(r, 150));
          await op.webhook.certificates?.rotate();
        }
      })();
      await Promise.all([...Array.from({ length: 6 }, worker), rotations]);
      assert.deepEqual(failures, []);
      const after = await webhookState(s.client);
      assert.equal(after.ca, before.ca, "the CA is kept");
      assert.notEqual(after.tls, before.tls, "the serving certificate was replaced");
      assert.deepEqual(after.bundles, [after.ca]);
      assert.equal(op.webhook.certificates?.current?.serving.certPem, after.tls);
      assert.ok(admissions(op.metrics, "mutated") >= total);
    });

    await t.step("a restart reuses the Secret's CA and serving certificate and updates the URL", async () => {
      const before = await webhookState(s.client);
      assert.equal(await op.stop(), 0);
      op = await s.start();
      const newPort = op.webhook.addr?.port;
      const after = await until("configuration URL updated", async () => {
        const state = await webhookState(s.client);
        return state.url[0] === `https://127.0.0.1:${newPort}/admissionwebhook` ? state : undefined;
      });
      assert.equal(after.ca, before.ca);
      assert.equal(after.tls, before.tls);
      assert.deepEqual(after.bundles, [before.ca]);
      const created = await createBuild(s.client, "team-a", "after-restart");
      assertRewritten(created, s.quay, "team-a");
    });

    await t.step("the webhook and its certificates logged no warning or error", () => {
      const bad = s.logs.filter((l) => /"level":"(warn|error)"/.test(l) && /"component":"webhook/.test(l));
      assert.deepEqual(bad, []);
    });
  } finally {
    await s.close();
  }
});
