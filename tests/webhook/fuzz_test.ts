/**
 * @module
 * Fuzzing the admission webhook through its HTTP interface: arbitrary bytes and JSON, and
 * AdmissionReviews whose Builds miss fields or carry fields of the wrong type. The webhook must
 * never throw (no 500), always answer a well-formed AdmissionReview echoing the uid or HTTP 400,
 * and every patch it emits must apply cleanly (RFC 6902, validated) to the object it was sent.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import jsonpatch from "fast-json-patch";
import { createWebhookApp, type NamespaceTarget } from "../../src/webhook/mod.ts";
import { decodeReview, MemoryPort, readyTarget } from "./fixtures.ts";

function fuzzPort(): MemoryPort {
  const port = new MemoryPort();
  port.targets.set("team-a", readyTarget("team-a"));
  port.targets.set("team-b", readyTarget("team-b"));
  port.targets.set("pending", { state: "pending", reason: "new" });
  port.targets.set("stuck", { state: "pending", reason: "Quay down" });
  const target = port.target.bind(port);
  port.target = (namespace) => {
    if (namespace === "throws") throw new Error("cache not synced");
    return target(namespace);
  };
  port.onProvision = (namespace) =>
    namespace === "pending"
      ? Promise.resolve(readyTarget(namespace))
      : Promise.resolve({ state: "pending", reason: "still down" } as NamespaceTarget);
  return port;
}

const odd = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.boolean(),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

function maybe<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 4, arbitrary }, { weight: 1, arbitrary: odd });
}

const namespaceName = fc.constantFrom("team-a", "team-b", "pending", "stuck", "throws", "other", "");
const outputTo = fc.record({
  kind: maybe(fc.constantFrom("ImageStreamTag", "DockerImage", "ImageStreamImage")),
  name: maybe(fc.oneof(
    fc.constantFrom("app", "app:v1", "App:1", ":x", "a:b:c", "app:", "x/y:1", "a.b_c-d:1.0"),
    fc.string({ maxLength: 12 }),
  )),
  namespace: maybe(namespaceName),
}, { requiredKeys: [] });
const output = fc.record({ to: maybe(outputTo), pushSecret: maybe(fc.record({ name: fc.string() })) }, {
  requiredKeys: [],
});
const strategy = fc.record({
  type: maybe(fc.constantFrom("Docker", "Source", "Custom", "JenkinsPipeline")),
  dockerStrategy: maybe(fc.constant({})),
  sourceStrategy: maybe(fc.constant({})),
}, { requiredKeys: [] });
const metadata = fc.record({
  name: maybe(fc.string({ maxLength: 8 })),
  namespace: maybe(namespaceName),
  annotations: maybe(
    fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
  ),
}, { requiredKeys: [] });
const build = fc.record({
  metadata: maybe(metadata),
  spec: maybe(fc.record({ strategy: maybe(strategy), output: maybe(output) }, { requiredKeys: [] })),
}, { requiredKeys: [] });
const randomReview = fc.record({
  apiVersion: fc.constantFrom("admission.k8s.io/v1", "admission.k8s.io/v1beta1"),
  kind: fc.constant("AdmissionReview"),
  request: fc.record({
    uid: fc.string({ minLength: 1, maxLength: 36 }),
    operation: maybe(fc.constantFrom("CREATE", "UPDATE", "DELETE", "CONNECT")),
    kind: maybe(fc.constantFrom(
      { group: "build.openshift.io", version: "v1", kind: "Build" },
      { group: "build.openshift.io", version: "v1", kind: "BuildRequest" },
      { group: "", version: "v1", kind: "Pod" },
    )),
    subResource: maybe(fc.constantFrom("", "clone", "details")),
    namespace: maybe(namespaceName),
    name: maybe(fc.string({ maxLength: 8 })),
    object: maybe(build),
    dryRun: maybe(fc.boolean()),
  }, { requiredKeys: ["uid"] }),
});

/** Fields of a Build review that the corruption step may delete or replace with an odd value. */
const CORRUPTIBLE: readonly (readonly string[])[] = [
  ["request", "operation"],
  ["request", "namespace"],
  ["request", "object"],
  ["request", "object", "metadata"],
  ["request", "object", "metadata", "annotations"],
  ["request", "object", "metadata", "namespace"],
  ["request", "object", "spec"],
  ["request", "object", "spec", "strategy"],
  ["request", "object", "spec", "strategy", "type"],
  ["request", "object", "spec", "output"],
  ["request", "object", "spec", "output", "to"],
  ["request", "object", "spec", "output", "to", "kind"],
  ["request", "object", "spec", "output", "to", "name"],
  ["request", "object", "spec", "output", "to", "namespace"],
  ["request", "object", "spec", "output", "pushSecret"],
];

function corrupt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let parent: unknown = target;
  for (const key of path.slice(0, -1)) {
    if (typeof parent !== "object" || parent === null) return;
    parent = (parent as Record<string, unknown>)[key];
  }
  if (typeof parent !== "object" || parent === null || Array.isArray(parent)) return;
  const last = path[path.length - 1] ?? "";
  if (value === undefined) delete (parent as Record<string, unknown>)[last];
  else (parent as Record<string, unknown>)[last] = value;
}

/** A valid Build review (so the mutation branch is reached often), then up to three corruptions. */
const corruptedReview = fc.record({
  apiVersion: fc.constantFrom("admission.k8s.io/v1", "admission.k8s.io/v1beta1"),
  uid: fc.uuid(),
  namespace: fc.constantFrom("team-a", "team-b", "pending", "stuck", "throws", "other"),
  strategy: fc.constantFrom<unknown>(
    { type: "Docker", dockerStrategy: {} },
    { type: "Source", sourceStrategy: {} },
    { dockerStrategy: { noCache: true } },
    { type: "Custom", customStrategy: {} },
  ),
  name: fc.constantFrom("app", "app:v1", "web.api_1:2.0", "a:B_1", "App:1", "app:bad tag", ":x"),
  outputNamespace: fc.constantFrom<string | null | undefined>(undefined, null, "", "same", "team-b"),
  annotations: fc.constantFrom<unknown>(undefined, null, {}, { "a/b": "c", "x~y": "z" }),
  pushSecret: fc.constantFrom<unknown>(undefined, { name: "builder-dockercfg-abc" }),
  corruptions: fc.oneof(
    { weight: 2, arbitrary: fc.constant([]) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(fc.constantFrom(...CORRUPTIBLE), odd), { minLength: 1, maxLength: 3 }),
    },
  ),
}).map((c) => {
  const to: Record<string, unknown> = { kind: "ImageStreamTag", name: c.name };
  if (c.outputNamespace !== undefined) {
    to.namespace = c.outputNamespace === "same" ? c.namespace : c.outputNamespace;
  }
  const outputValue: Record<string, unknown> = { to };
  if (c.pushSecret !== undefined) outputValue.pushSecret = c.pushSecret;
  const metadataValue: Record<string, unknown> = { name: "app-1", namespace: c.namespace };
  if (c.annotations !== undefined) metadataValue.annotations = structuredClone(c.annotations);
  const sent = {
    apiVersion: c.apiVersion,
    kind: "AdmissionReview",
    request: {
      uid: c.uid,
      kind: { group: "build.openshift.io", version: "v1", kind: "Build" },
      operation: "CREATE",
      namespace: c.namespace,
      name: "app-1",
      object: {
        metadata: metadataValue,
        spec: { strategy: structuredClone(c.strategy), output: outputValue },
      },
    } as Record<string, unknown>,
  };
  for (const [path, value] of c.corruptions) corrupt(sent, path, structuredClone(value));
  return sent;
});

const review = fc.oneof(randomReview, corruptedReview);

async function send(app: ReturnType<typeof createWebhookApp>, body: string | Uint8Array) {
  const payload = typeof body === "string" ? body : new Uint8Array(body);
  const response = await app.request("/admissionwebhook", {
    method: "POST",
    body: payload,
    headers: { "content-type": "application/json" },
  });
  return { status: response.status, json: await response.json() as unknown };
}

Deno.test("webhook answers arbitrary JSON and bytes with an AdmissionReview or a 400, never a throw", async () => {
  const app = createWebhookApp({ admissionPort: fuzzPort(), provisionBudgetMs: 50 });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.json(),
        fc.string(),
        fc.uint8Array({ maxLength: 64 }),
        fc.jsonValue().map((request) =>
          JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request })
        ),
      ),
      async (body) => {
        const { status, json } = await send(app, body);
        assert.ok(status === 200 || status === 400, `status ${status}`);
        if (status === 200) {
          const answer = decodeReview(json);
          assert.equal(answer.kind, "AdmissionReview");
          assert.equal(typeof answer.response.uid, "string");
          assert.equal(typeof answer.response.allowed, "boolean");
        } else {
          assert.equal((json as { kind: string }).kind, "Status");
        }
      },
    ),
    { numRuns: 600 },
  );
});

Deno.test("webhook answers odd Build-shaped AdmissionReviews well-formed, and every patch applies", async () => {
  const app = createWebhookApp({ admissionPort: fuzzPort(), provisionBudgetMs: 50 });
  let mutated = 0;
  await fc.assert(
    fc.asyncProperty(review, async (sent) => {
      const { status, json } = await send(app, JSON.stringify(sent));
      assert.equal(status, 200);
      const answer = decodeReview(json);
      assert.equal(answer.apiVersion, sent.apiVersion);
      assert.equal(answer.response.uid, sent.request.uid);
      assert.equal(typeof answer.response.allowed, "boolean");
      if (!answer.response.allowed) {
        assert.equal(typeof answer.response.status?.message, "string");
        assert.equal(answer.patch, undefined);
      }
      if (answer.patch === undefined) return;
      mutated++;
      assert.equal(answer.response.patchType, "JSONPatch");
      // What the apiserver received is what JSON carried: undefined members are gone.
      const object = JSON.parse(JSON.stringify(sent.request)).object;
      const patched = jsonpatch.applyPatch(object, answer.patch as jsonpatch.Operation[], true, false)
        .newDocument as {
          metadata: { annotations: Record<string, string> };
          spec: { output: { to: Record<string, unknown>; pushSecret: { name: string } } };
        };
      assert.equal(patched.spec.output.to.kind, "DockerImage");
      assert.equal(Object.hasOwn(patched.spec.output.to, "namespace"), false);
      assert.equal(
        patched.metadata.annotations["quay-registry-operator.quay.redhat.com/quay-registry-operator-managed"],
        "true",
      );
      assert.equal(patched.spec.output.pushSecret.name, "builder-quay-openshift");
    }),
    { numRuns: 2000 },
  );
  // The generator must reach the mutation branch often enough for the property to mean something.
  assert.ok(mutated > 60, `only ${mutated} mutations`);
});
