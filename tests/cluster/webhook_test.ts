/**
 * @module
 * The real apiserver calls a MutatingWebhookConfiguration registered by URL over TLS, trusting only
 * its caBundle, and applies the JSON patch the webhook answers with: the path the end-to-end suite
 * uses for quay-bridge's Build webhook.
 */
import assert from "node:assert/strict";
import { createCertificateAuthority, issueServingCertificate } from "../../src/certs/pki.ts";
import { startRealCluster } from "./mod.ts";

const NAMESPACE = "walkthrough";
const WEBHOOK_NAME = "builds.quay-bridge.test";
const PULL_SPEC = "quay.example.com/openshift_walkthrough/app:latest";

interface Review {
  apiVersion: string;
  kind: string;
  request: {
    uid: string;
    kind: unknown;
    resource: unknown;
    operation: string;
    namespace: string;
    userInfo: { username: string };
    object: { metadata: { name?: string; generateName?: string } };
    dryRun: boolean;
  };
}

/** The patch quay-bridge answers with for a Build pushing to an ImageStreamTag. */
const PATCH = [
  { op: "replace", path: "/spec/output/to/kind", value: "DockerImage" },
  { op: "replace", path: "/spec/output/to/name", value: PULL_SPEC },
  { op: "remove", path: "/spec/output/to/namespace" },
  { op: "add", path: "/spec/output/pushSecret", value: { name: "builder-quay-openshift" } },
  {
    op: "add",
    path: "/metadata/annotations",
    value: {
      "quay-registry-operator.quay.redhat.com/quay-registry-operator-managed": "true",
      "quay-registry-operator.quay.redhat.com/destination-imagestream": "app:latest",
    },
  },
];

function build(name: string) {
  return {
    apiVersion: "build.openshift.io/v1",
    kind: "Build",
    metadata: { name },
    spec: {
      strategy: { type: "Docker", dockerStrategy: {} },
      output: { to: { kind: "ImageStreamTag", name: "app:latest", namespace: NAMESPACE } },
    },
  };
}

/** A one-chunk stream body: Deno.serve stalls ~40 ms on string bodies over TLS with HTTP/1.1. */
function jsonBody(value: unknown): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

Deno.test("the real apiserver calls a URL webhook over TLS with its caBundle and applies the patch", async (t) => {
  await using cluster = await startRealCluster({ controllers: false });
  const ca = await createCertificateAuthority({ commonName: "webhook-ca" });
  const serving = await issueServingCertificate(ca, { commonName: "127.0.0.1", ipAddresses: ["127.0.0.1"] });
  const reviews: Review[] = [];
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: serving.certPem,
    key: serving.keyPem,
    onListen: () => {},
  }, async (request) => {
    const review = await request.json() as Review;
    reviews.push(review);
    return new Response(
      jsonBody({
        apiVersion: review.apiVersion, // answer in the version asked
        kind: "AdmissionReview",
        response: {
          uid: review.request.uid,
          allowed: true,
          patchType: "JSONPatch",
          patch: btoa(JSON.stringify(PATCH)),
        },
      }),
      { headers: { "Content-Type": "application/json" } },
    );
  });
  const url = `https://127.0.0.1:${server.addr.port}/admissionwebhook`;
  const configuration = (options: { caPem: string; versions: string[] }) => ({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "quay-bridge-e2e" },
    webhooks: [{
      name: WEBHOOK_NAME,
      admissionReviewVersions: options.versions,
      sideEffects: "None",
      failurePolicy: "Fail",
      timeoutSeconds: 5,
      clientConfig: { url, caBundle: btoa(options.caPem) },
      rules: [{
        apiGroups: ["build.openshift.io"],
        apiVersions: ["v1"],
        operations: ["CREATE"],
        resources: ["builds"],
        scope: "Namespaced",
      }],
    }],
  });
  const builds = `/apis/build.openshift.io/v1/namespaces/${NAMESPACE}/builds`;
  const create = (name: string, query = "") =>
    cluster.request(`${builds}${query}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(build(name)),
    });
  const apply = async (body: unknown) => {
    const result = await cluster.kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(body) });
    assert.equal(result.code, 0, result.stderr);
  };
  /** Webhook configurations reach the admission chain through an informer; wait until `check`
   * holds for a dry-run create (which calls side-effect-free webhooks but stores nothing). */
  const eventually = async (check: (response: Response) => Promise<boolean>) => {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (await check(await create("probe", "?dryRun=All"))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail("the webhook configuration never took effect");
  };

  assert.equal((await cluster.kubectl(["create", "namespace", NAMESPACE])).code, 0);

  await t.step("a v1 webhook's JSON patch is applied to the stored Build", async () => {
    await apply(configuration({ caPem: ca.certPem, versions: ["v1"] }));
    await eventually(async (response) => (await response.json()).spec.output.to.kind === "DockerImage");
    const response = await create("app-1");
    assert.equal(response.status, 201);
    const stored = await response.json();
    assert.deepEqual(stored.spec.output, {
      to: { kind: "DockerImage", name: PULL_SPEC },
      pushSecret: { name: "builder-quay-openshift" },
    });
    assert.equal(
      stored.metadata.annotations["quay-registry-operator.quay.redhat.com/quay-registry-operator-managed"],
      "true",
    );
    const review = reviews.at(-1);
    assert.ok(review);
    assert.equal(review.apiVersion, "admission.k8s.io/v1");
    assert.equal(review.kind, "AdmissionReview");
    assert.match(review.request.uid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(review.request.kind, { group: "build.openshift.io", version: "v1", kind: "Build" });
    assert.deepEqual(review.request.resource, {
      group: "build.openshift.io",
      version: "v1",
      resource: "builds",
    });
    assert.equal(review.request.operation, "CREATE");
    assert.equal(review.request.namespace, NAMESPACE);
    assert.equal(review.request.userInfo.username, "e2e-admin");
    assert.equal(review.request.object.metadata.name, "app-1");
    assert.equal(review.request.dryRun, false);
  });

  await t.step("a v1beta1-only webhook, as the seed registers it, is asked in v1beta1", async () => {
    await apply(configuration({ caPem: ca.certPem, versions: ["v1beta1"] }));
    await eventually(async (response) => {
      await response.body?.cancel();
      return reviews.at(-1)?.apiVersion === "admission.k8s.io/v1beta1";
    });
    const response = await create("app-2");
    assert.equal(response.status, 201);
    assert.equal((await response.json()).spec.output.to.name, PULL_SPEC);
  });

  await t.step("a caBundle that does not match fails closed with the TLS error", async () => {
    const other = await createCertificateAuthority({ commonName: "someone-else" });
    await apply(configuration({ caPem: other.certPem, versions: ["v1"] }));
    let status: { code: number; reason: string; message: string } | undefined;
    await eventually(async (response) => {
      status = await response.json();
      return response.status === 500;
    });
    assert.equal(status?.reason, "InternalError");
    assert.equal(
      status?.message,
      `Internal error occurred: failed calling webhook "${WEBHOOK_NAME}": failed to call webhook: ` +
        `Post "${url}?timeout=5s": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
    );
  });
});
