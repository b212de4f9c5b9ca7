/**
 * @module
 * Every decision branch of the admission webhook, through its HTTP interface in-process
 * (`app.request`, no socket): the exact upstream-compatible patch and that it applies to the Build,
 * v1 and v1beta1 envelopes, the cases passed unchanged, the denials and the HTTP 400s.
 */
import assert from "node:assert/strict";
import jsonpatch from "fast-json-patch";
import { createLogger } from "../../src/log.ts";
import { type AdmissionOutcome, createWebhookApp, type NamespaceTarget } from "../../src/webhook/mod.ts";
import { buildReview, decodeReview, MemoryPort, post, readyTarget } from "./fixtures.ts";

const MANAGED =
  "/metadata/annotations/quay-registry-operator.quay.redhat.com~1quay-registry-operator-managed";
const DESTINATION = "/metadata/annotations/quay-registry-operator.quay.redhat.com~1destination-imagestream";

function managedPort(...namespaces: string[]): MemoryPort {
  const port = new MemoryPort();
  for (const namespace of namespaces) port.targets.set(namespace, readyTarget(namespace));
  return port;
}

function applyTo(review: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  const object = (review.request as { object: unknown }).object;
  return jsonpatch.applyPatch(object, patch as jsonpatch.Operation[], true, false).newDocument as Record<
    string,
    unknown
  >;
}

Deno.test("webhook rewrites an ImageStreamTag output to the Quay pull spec with the exact upstream patch", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({ annotations: { "openshift.io/build-config.name": "app" } });
  const { status, json } = await post(app, review);
  assert.equal(status, 200);
  const answer = decodeReview(json);
  assert.equal(answer.apiVersion, "admission.k8s.io/v1");
  assert.equal(answer.kind, "AdmissionReview");
  assert.equal(answer.response.uid, "0b6e7a1c-4a52-4a8e-9d1b-6c2f1e0f7a11");
  assert.equal(answer.response.allowed, true);
  assert.equal(answer.response.patchType, "JSONPatch");
  assert.deepEqual(answer.patch, [
    { op: "replace", path: "/spec/output/to/kind", value: "DockerImage" },
    { op: "replace", path: "/spec/output/to/name", value: "quay.example.com/openshift_team-a/app:latest" },
    { op: "add", path: MANAGED, value: "true" },
    { op: "add", path: DESTINATION, value: "team-a/app:latest" },
    { op: "add", path: "/spec/output/pushSecret", value: { name: "builder-quay-openshift" } },
  ]);
  const patched = applyTo(review, answer.patch) as {
    metadata: { annotations: Record<string, string> };
    spec: { output: unknown };
  };
  assert.deepEqual(patched.spec.output, {
    to: { kind: "DockerImage", name: "quay.example.com/openshift_team-a/app:latest" },
    pushSecret: { name: "builder-quay-openshift" },
  });
  assert.deepEqual(patched.metadata.annotations, {
    "openshift.io/build-config.name": "app",
    "quay-registry-operator.quay.redhat.com/quay-registry-operator-managed": "true",
    "quay-registry-operator.quay.redhat.com/destination-imagestream": "team-a/app:latest",
  });
});

Deno.test("webhook answers a v1beta1 AdmissionReview in v1beta1 with the same patch", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const { json } = await post(app, buildReview({ version: "admission.k8s.io/v1beta1", uid: "beta-uid" }));
  const answer = decodeReview(json);
  assert.equal(answer.apiVersion, "admission.k8s.io/v1beta1");
  assert.equal(answer.response.uid, "beta-uid");
  assert.equal(answer.patch?.[1]?.value, "quay.example.com/openshift_team-a/app:latest");
});

Deno.test("webhook treats a tag-less ImageStreamTag name as latest", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({ output: { to: { kind: "ImageStreamTag", name: "frontend" } } });
  const answer = decodeReview((await post(app, review)).json);
  assert.equal(answer.patch?.[1]?.value, "quay.example.com/openshift_team-a/frontend:latest");
  assert.equal(answer.patch?.find((op) => op.path === DESTINATION)?.value, "team-a/frontend:latest");
});

Deno.test("webhook removes an output namespace equal to the build's and creates the annotations map", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({
    output: { to: { kind: "ImageStreamTag", name: "app:v2", namespace: "team-a" } },
  });
  const answer = decodeReview((await post(app, review)).json);
  assert.deepEqual(answer.patch?.slice(0, 4), [
    { op: "replace", path: "/spec/output/to/kind", value: "DockerImage" },
    { op: "replace", path: "/spec/output/to/name", value: "quay.example.com/openshift_team-a/app:v2" },
    { op: "remove", path: "/spec/output/to/namespace" },
    { op: "add", path: "/metadata/annotations", value: {} },
  ]);
  const patched = applyTo(review, answer.patch) as { spec: { output: { to: Record<string, unknown> } } };
  assert.equal(Object.hasOwn(patched.spec.output.to, "namespace"), false);
});

Deno.test("webhook replaces null annotations and an existing pushSecret", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({
    annotations: null,
    output: { to: { kind: "ImageStreamTag", name: "app:1" }, pushSecret: { name: "builder-dockercfg-x" } },
  });
  const answer = decodeReview((await post(app, review)).json);
  const patched = applyTo(review, answer.patch) as {
    metadata: { annotations: Record<string, string> };
    spec: { output: { pushSecret: unknown } };
  };
  assert.deepEqual(patched.spec.output.pushSecret, { name: "builder-quay-openshift" });
  assert.equal(Object.keys(patched.metadata.annotations).length, 2);
});

Deno.test("webhook mutates Source strategy builds too", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({
    strategy: { type: "Source", sourceStrategy: { from: { kind: "DockerImage" } } },
  });
  assert.equal(decodeReview((await post(app, review)).json).response.patchType, "JSONPatch");
});

const passThrough: [string, Record<string, unknown>][] = [
  ["an UPDATE", buildReview({ operation: "UPDATE" })],
  ["a DELETE", buildReview({ operation: "DELETE" })],
  [
    "another kind",
    buildReview({ kind: { group: "build.openshift.io", version: "v1", kind: "BuildConfig" } }),
  ],
  ["a Pod", buildReview({ kind: { group: "", version: "v1", kind: "Pod" } })],
  ["a Custom strategy", buildReview({ strategy: { type: "Custom", customStrategy: {} } })],
  [
    "a JenkinsPipeline strategy",
    buildReview({ strategy: { type: "JenkinsPipeline", jenkinsPipelineStrategy: {} } }),
  ],
  ["a DockerImage output", buildReview({ output: { to: { kind: "DockerImage", name: "quay.io/x/y:1" } } })],
  ["a build with no output", buildReview({ output: {} })],
  ["an unmanaged namespace", buildReview({ namespace: "other" })],
];

for (const [what, review] of passThrough) {
  Deno.test(`webhook allows ${what} unchanged`, async () => {
    const app = createWebhookApp({ admissionPort: managedPort("team-a") });
    const { status, json } = await post(app, review);
    assert.equal(status, 200);
    const answer = decodeReview(json);
    assert.equal(answer.response.allowed, true);
    assert.equal(answer.response.patch, undefined);
    assert.equal(answer.response.patchType, undefined);
    assert.equal(answer.response.uid, "0b6e7a1c-4a52-4a8e-9d1b-6c2f1e0f7a11");
  });
}

Deno.test("webhook allows a cross-namespace output unchanged with a warning on v1 only", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a", "team-b") });
  const output = { to: { kind: "ImageStreamTag", name: "app:1", namespace: "team-b" } };
  const v1 = decodeReview((await post(app, buildReview({ output }))).json);
  assert.equal(v1.response.allowed, true);
  assert.equal(v1.response.patch, undefined);
  assert.equal(v1.response.warnings?.length, 1);
  assert.match(v1.response.warnings?.[0] ?? "", /namespace "team-b".*robot cannot push/);
  const beta = decodeReview(
    (await post(app, buildReview({ output, version: "admission.k8s.io/v1beta1" }))).json,
  );
  assert.equal(beta.response.allowed, true);
  assert.equal(beta.response.warnings, undefined);
});

Deno.test("webhook denies an ImageStream name Quay cannot hold, saying what to change", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  for (const name of ["App:1", "_app:1", ":1"]) {
    const answer = decodeReview(
      (await post(app, buildReview({ output: { to: { kind: "ImageStreamTag", name } } }))).json,
    );
    assert.equal(answer.response.allowed, false, name);
    assert.equal(answer.response.status?.code, 422);
    assert.match(answer.response.status?.message ?? "", /not a valid Quay repository name.*Rename/);
  }
  const badTag = decodeReview(
    (await post(app, buildReview({ output: { to: { kind: "ImageStreamTag", name: "app:-x" } } }))).json,
  );
  assert.equal(badTag.response.allowed, false);
  assert.match(badTag.response.status?.message ?? "", /not a valid image tag/);
});

Deno.test("webhook provisions a pending namespace on demand once for concurrent builds, then mutates", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "organization not created yet" });
  port.onProvision = async (namespace) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    port.targets.set(namespace, readyTarget(namespace));
    return port.target(namespace);
  };
  const app = createWebhookApp({ admissionPort: port });
  const answers = await Promise.all(
    [1, 2, 3].map(async (i) => decodeReview((await post(app, buildReview({ uid: `u${i}` }))).json)),
  );
  assert.equal(port.provisionCalls, 1);
  for (const [i, answer] of answers.entries()) {
    assert.equal(answer.response.uid, `u${i + 1}`);
    assert.equal(answer.response.patchType, "JSONPatch");
  }
});

Deno.test("webhook denies a namespace still pending after provisioning, with why and what to do", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "Quay unreachable" });
  const app = createWebhookApp({ admissionPort: port });
  const answer = decodeReview((await post(app, buildReview())).json);
  assert.equal(answer.response.allowed, false);
  assert.equal(answer.response.status?.code, 503);
  assert.match(
    answer.response.status?.message ?? "",
    /"team-a".*not ready \(Quay unreachable\).*oc start-build/,
  );
});

Deno.test("webhook denies when provisioning outlives the budget and aborts the provisioning", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "robot missing" });
  port.onProvision = (_, signal) =>
    new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  const outcomes: AdmissionOutcome[] = [];
  const app = createWebhookApp({
    admissionPort: port,
    provisionBudgetMs: 30,
    onAdmission: (o) => outcomes.push(o),
  });
  const started = performance.now();
  const answer = decodeReview((await post(app, buildReview())).json);
  assert.ok(performance.now() - started < 1000);
  assert.equal(answer.response.allowed, false);
  assert.match(answer.response.status?.message ?? "", /not provisioned within 30 ms/);
  assert.equal(port.provisionSignals[0]?.aborted, true);
  assert.deepEqual(outcomes, ["denied"]);
});

Deno.test("webhook denies with the provisioning error when provisioning fails", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "new" });
  port.onProvision = () => Promise.reject(new Error("Quay answered 403 insufficient_scope"));
  const app = createWebhookApp({ admissionPort: port });
  const answer = decodeReview((await post(app, buildReview())).json);
  assert.equal(answer.response.allowed, false);
  assert.match(answer.response.status?.message ?? "", /insufficient_scope/);
});

Deno.test("webhook allows a build whose namespace provisioning found unmanaged", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "new" });
  port.onProvision = () => Promise.resolve({ state: "unmanaged" } as NamespaceTarget);
  const app = createWebhookApp({ admissionPort: port });
  const answer = decodeReview((await post(app, buildReview())).json);
  assert.equal(answer.response.allowed, true);
  assert.equal(answer.response.patch, undefined);
});

Deno.test("webhook never provisions during a dry run", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "pending", reason: "new" });
  const app = createWebhookApp({ admissionPort: port });
  const answer = decodeReview((await post(app, buildReview({ dryRun: true }))).json);
  assert.equal(answer.response.allowed, false);
  assert.match(answer.response.status?.message ?? "", /dry run/);
  assert.equal(port.provisionCalls, 0);
});

Deno.test("webhook denies with code 500 when the port throws, and reports an error outcome", async () => {
  const port = new MemoryPort();
  port.target = () => {
    throw new Error("cache not synced");
  };
  const outcomes: AdmissionOutcome[] = [];
  const app = createWebhookApp({ admissionPort: port, onAdmission: (o) => outcomes.push(o) });
  const { status, json } = await post(app, buildReview());
  assert.equal(status, 200);
  const answer = decodeReview(json);
  assert.equal(answer.response.allowed, false);
  assert.equal(answer.response.status?.code, 500);
  assert.deepEqual(outcomes, ["error"]);
});

Deno.test("webhook denies with code 500 when the port returns a malformed target, now or after provisioning", async () => {
  const port = new MemoryPort();
  port.targets.set("team-a", { state: "ready" } as unknown as NamespaceTarget);
  port.targets.set("team-b", { state: "pending", reason: "new" });
  port.onProvision = () => Promise.resolve(undefined as unknown as NamespaceTarget);
  const app = createWebhookApp({ admissionPort: port });
  for (const namespace of ["team-a", "team-b"]) {
    const { status, json } = await post(app, buildReview({ namespace }));
    assert.equal(status, 200);
    const answer = decodeReview(json);
    assert.equal(answer.response.allowed, false, namespace);
    assert.equal(answer.response.status?.code, 500);
    assert.match(answer.response.status?.message ?? "", /malformed namespace target/);
  }
});

Deno.test("webhook answers HTTP 400 with a Status, a debug line each and one warning when no AdmissionReview can be answered", async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(line) });
  const outcomes: AdmissionOutcome[] = [];
  const app = createWebhookApp({
    admissionPort: managedPort("team-a"),
    logger,
    onAdmission: (o) => outcomes.push(o),
  });
  const noUid = buildReview();
  delete (noUid.request as Record<string, unknown>).uid;
  const bodies: unknown[] = [
    "{not json",
    "[]",
    "[".repeat(200_000) + "]".repeat(200_000),
    "null",
    { apiVersion: "admission.k8s.io/v2", kind: "AdmissionReview", request: { uid: "x" } },
    { apiVersion: "admission.k8s.io/v1", kind: "ConversionReview", request: { uid: "x" } },
    { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" },
    noUid,
  ];
  for (const body of bodies) {
    const { status, json } = await post(app, body);
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal((json as { kind: string }).kind, "Status");
  }
  assert.equal(outcomes.length, bodies.length);
  assert.ok(outcomes.every((o) => o === "invalid"));
  const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; count?: number });
  // Unauthenticated callers cannot flood the log: one debug line each, one warning a minute.
  assert.equal(
    logged.filter((l) => l.level === "debug" && l.msg === "admission request rejected").length,
    bodies.length,
  );
  const warnings = logged.filter((l) => l.level === "warn");
  assert.deepEqual(warnings.map((w) => [w.msg, w.count]), [["admission requests rejected", 1]]);
});

Deno.test("webhook answers HTTP 400 to bodies over the size limit, declared or streamed", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a"), maxBodyBytes: 1024 });
  const big = JSON.stringify(buildReview({ annotations: { pad: "x".repeat(2000) } }));
  const declared = await app.request("/admissionwebhook", {
    method: "POST",
    body: big,
    headers: { "content-length": String(big.length), "content-type": "application/json" },
  });
  assert.equal(declared.status, 400);
  assert.match((await declared.json()).message, /exceeds 1024 bytes/);
  const bytes = new TextEncoder().encode(big);
  const streamed = await app.request("/admissionwebhook", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice(0, 700));
        controller.enqueue(bytes.slice(700));
        controller.close();
      },
    }),
  });
  assert.equal(streamed.status, 400);
  await streamed.body?.cancel();
  const small = await app.request("/admissionwebhook", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(buildReview({ namespace: "x" }))));
        controller.close();
      },
    }),
  });
  assert.equal(small.status, 200);
  await small.body?.cancel();
});

Deno.test("webhook default limit accepts 3 MiB and rejects just above it", async () => {
  const app = createWebhookApp({ admissionPort: managedPort("team-a") });
  const review = buildReview({ annotations: { pad: "" } });
  const base = JSON.stringify(review).length;
  const fill = (n: number) =>
    JSON.stringify(buildReview({ annotations: { pad: "x".repeat(3 * 1024 * 1024 - base + n) } }));
  assert.equal((await post(app, fill(0))).status, 200);
  assert.equal((await post(app, fill(1))).status, 400);
});

Deno.test("webhook serves on a configured path and reports outcomes with durations", async () => {
  const seen: [AdmissionOutcome, number][] = [];
  const app = createWebhookApp({
    admissionPort: managedPort("team-a"),
    path: "/mutate-build",
    onAdmission: (outcome, ms) => seen.push([outcome, ms]),
  });
  assert.equal((await post(app, buildReview(), "/mutate-build")).status, 200);
  assert.equal((await post(app, buildReview({ operation: "UPDATE" }), "/mutate-build")).status, 200);
  assert.equal((await post(app, buildReview(), "/admissionwebhook")).status, 404);
  assert.deepEqual(seen.map(([o]) => o), ["mutated", "allowed"]);
  assert.ok(seen.every(([, ms]) => ms >= 0 && ms < 1000));
});

Deno.test("webhook logs denials at info with uid and reason, and routine mutations only at debug", async () => {
  const info: string[] = [];
  const debug: string[] = [];
  const port = managedPort("team-a");
  const infoApp = createWebhookApp({
    admissionPort: port,
    logger: createLogger({ sink: (l) => info.push(l) }),
  });
  const debugApp = createWebhookApp({
    admissionPort: port,
    logger: createLogger({ level: "debug", sink: (l) => debug.push(l) }),
  });
  await post(infoApp, buildReview());
  await post(infoApp, buildReview({ output: { to: { kind: "ImageStreamTag", name: "Bad:1" } } }));
  assert.equal(info.length, 1);
  const denial = JSON.parse(info[0] ?? "{}");
  assert.equal(denial.level, "info");
  assert.equal(denial.msg, "admission");
  assert.equal(denial.outcome, "denied");
  assert.equal(denial.reason, "InvalidOutputName");
  assert.equal(denial.namespace, "team-a");
  assert.equal(denial.uid, "0b6e7a1c-4a52-4a8e-9d1b-6c2f1e0f7a11");
  await post(debugApp, buildReview());
  const mutation = JSON.parse(debug[0] ?? "{}");
  assert.equal(mutation.level, "debug");
  assert.equal(mutation.outcome, "mutated");
  assert.equal(typeof mutation.durationMs, "number");
});
