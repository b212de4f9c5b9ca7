/**
 * Mutating admission: the world calls MutatingWebhookConfigurations over HTTPS, verifying the
 * webhook's certificate against its caBundle, applies returned patches, and honours denials,
 * failurePolicy and timeouts with kube-apiserver's messages.
 */
import assert from "node:assert/strict";
import { createCertificateAuthority, issueServingCertificate } from "../../../src/certs/pki.ts";
import { type TestWorld, withWorld } from "./test_helpers.ts";

interface Hook {
  url: string;
  caPem: string;
  /** AdmissionReviews received. */
  // deno-lint-ignore no-explicit-any
  reviews: any[];
  close(): Promise<void>;
}

/** A webhook server with its own CA; its behaviour depends on the request path. */
async function startHook(): Promise<Hook> {
  const ca = await createCertificateAuthority({ commonName: "webhook-test-ca" });
  const cert = await issueServingCertificate(ca, {
    commonName: "hook.webhooks.svc",
    ipAddresses: ["127.0.0.1"],
  });
  // deno-lint-ignore no-explicit-any
  const reviews: any[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.certPem,
    key: cert.keyPem,
    onListen() {},
  }, async (req) => {
    const review = await req.json();
    reviews.push(review);
    const path = new URL(req.url).pathname;
    const uid = review.request.uid;
    const answer = (response: Record<string, unknown>) =>
      Response.json({
        apiVersion: review.apiVersion,
        kind: "AdmissionReview",
        response: { uid, ...response },
      });
    switch (path) {
      case "/label": {
        const patch = review.request.object.metadata.labels
          ? [{ op: "add", path: "/metadata/labels/mutated", value: "yes" }]
          : [{ op: "add", path: "/metadata/labels", value: { mutated: "yes" } }];
        return answer({
          allowed: true,
          patchType: "JSONPatch",
          patch: btoa(JSON.stringify(patch)),
          warnings: ["labelled by a test"],
        });
      }
      case "/deny":
        return answer({ allowed: false, status: { code: 403, message: "no way" } });
      case "/wrong-uid":
        return Response.json({
          apiVersion: review.apiVersion,
          kind: "AdmissionReview",
          response: { uid: "not-the-uid", allowed: true },
        });
      case "/slow":
        // Outlasts the webhook's 1 s timeout; shutdown waits for it to end.
        await new Promise((r) => setTimeout(r, 1500));
        return answer({ allowed: true });
      default:
        return answer({ allowed: true });
    }
  });
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    caPem: ca.certPem,
    reviews,
    close: async () => {
      await server.shutdown();
    },
  };
}

function webhookConfig(name: string, hooks: Array<Record<string, unknown>>): Record<string, unknown> {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
    webhooks: hooks.map((h) => ({
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"] }],
      ...h,
    })),
  };
}

function service(path: string, caPem: string) {
  return { service: { namespace: "webhooks", name: "hook", path }, caBundle: btoa(caPem) };
}

async function configure(t: TestWorld, config: Record<string, unknown>): Promise<void> {
  const r = await t.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    body: config,
  });
  assert.equal(r.status, 201, r.text);
}

async function withHook(fn: (t: TestWorld, hook: Hook) => Promise<void>): Promise<void> {
  const hook = await startHook();
  try {
    await withWorld({ serviceEndpoints: new Map([["webhooks/hook:443", hook.url]]) }, (t) => fn(t, hook));
  } finally {
    await hook.close();
  }
}

const CM = "/api/v1/namespaces/default/configmaps";

Deno.test("a matching webhook reached through its service mutates the object before it is stored", async () => {
  await withHook(async (t, hook) => {
    await configure(
      t,
      webhookConfig("label", [{ name: "label.example.com", clientConfig: service("/label", hook.caPem) }]),
    );
    const created = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(created.status, 201);
    assert.equal(created.body.metadata.labels.mutated, "yes");
    assert.equal(created.headers.get("warning"), '299 - "labelled by a test"');
    assert.equal((await t.request("GET", `${CM}/c`)).body.metadata.labels.mutated, "yes");
    const review = hook.reviews[0];
    assert.equal(review.apiVersion, "admission.k8s.io/v1");
    assert.deepEqual(review.request.kind, { group: "", version: "v1", kind: "ConfigMap" });
    assert.deepEqual(review.request.resource, { group: "", version: "v1", resource: "configmaps" });
    assert.equal(review.request.operation, "CREATE");
    assert.equal(review.request.namespace, "default");
    assert.equal(review.request.name, "c");
    assert.equal(review.request.userInfo.username, "system:admin");
    assert.equal(review.request.oldObject, null);
    assert.equal(review.request.dryRun, false);
    assert.equal(review.request.options.kind, "CreateOptions");
    // Updates are not in the rules; other resources neither.
    await t.request("PATCH", `${CM}/c`, {
      body: { data: { a: "1" } },
      contentType: "application/merge-patch+json",
    });
    await t.request("POST", "/api/v1/namespaces/default/secrets", { body: { metadata: { name: "s" } } });
    assert.equal(hook.reviews.length, 1);
  });
});

Deno.test("webhooks are chosen by namespaceSelector, objectSelector and rule scope, and speak v1beta1 when asked", async () => {
  await withHook(async (t, hook) => {
    await t.request("POST", "/api/v1/namespaces", {
      body: { metadata: { name: "opted-in", labels: { webhooks: "on" } } },
    });
    await configure(
      t,
      webhookConfig("selective", [{
        name: "selective.example.com",
        admissionReviewVersions: ["v1beta1"],
        clientConfig: service("/label", hook.caPem),
        namespaceSelector: { matchLabels: { webhooks: "on" } },
        objectSelector: { matchExpressions: [{ key: "skip", operator: "DoesNotExist" }] },
      }]),
    );
    assert.equal(
      (await t.request("POST", CM, { body: { metadata: { name: "untouched" } } })).body.metadata.labels,
      undefined,
    );
    const inNs = await t.request("POST", "/api/v1/namespaces/opted-in/configmaps", {
      body: { metadata: { name: "touched" } },
    });
    assert.equal(inNs.body.metadata.labels.mutated, "yes");
    const skipped = await t.request("POST", "/api/v1/namespaces/opted-in/configmaps", {
      body: { metadata: { name: "skipped", labels: { skip: "1" } } },
    });
    assert.equal(skipped.body.metadata.labels.mutated, undefined);
    assert.equal(hook.reviews.length, 1);
    assert.equal(hook.reviews[0].apiVersion, "admission.k8s.io/v1beta1");
  });
});

Deno.test("a denying webhook rejects the request with its message and code", async () => {
  await withHook(async (t, hook) => {
    await configure(
      t,
      webhookConfig("deny", [{ name: "deny.example.com", clientConfig: service("/deny", hook.caPem) }]),
    );
    const denied = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, 'admission webhook "deny.example.com" denied the request: no way');
    assert.equal((await t.request("GET", `${CM}/c`)).status, 404);
  });
});

Deno.test("failurePolicy decides what an unreachable webhook means: Fail refuses, Ignore proceeds", async () => {
  await withWorld(
    { serviceEndpoints: new Map([["webhooks/hook:443", "https://127.0.0.1:1"]]) },
    async (t) => {
      const ca = await createCertificateAuthority({ commonName: "unused" });
      await configure(
        t,
        webhookConfig("down", [{ name: "down.example.com", clientConfig: service("/label", ca.certPem) }]),
      );
      const refused = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
      assert.equal(refused.status, 500);
      assert.equal(refused.body.reason, "InternalError");
      assert.equal(
        refused.body.message,
        'Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: Post "https://hook.webhooks.svc:443/label?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused',
      );
      await t.request("PATCH", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/down", {
        body: [{ op: "replace", path: "/webhooks/0/failurePolicy", value: "Ignore" }],
        contentType: "application/json-patch+json",
      });
      assert.equal((await t.request("POST", CM, { body: { metadata: { name: "c" } } })).status, 201);
    },
  );
});

Deno.test("a webhook whose certificate does not match its caBundle, that answers late or with the wrong uid fails the call", async () => {
  await withHook(async (t, hook) => {
    const otherCa = await createCertificateAuthority({ commonName: "someone-else" });
    await configure(
      t,
      webhookConfig("wrong-ca", [{
        name: "wrong-ca.example.com",
        clientConfig: service("/label", otherCa.certPem),
      }]),
    );
    const untrusted = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(untrusted.status, 500);
    assert.match(
      untrusted.body.message,
      /failed calling webhook "wrong-ca\.example\.com": failed to call webhook: Post "https:\/\/hook\.webhooks\.svc:443\/label\?timeout=10s": tls: failed to verify certificate: x509: certificate signed by unknown authority$/,
    );
    await t.request("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/wrong-ca");

    await configure(
      t,
      webhookConfig("slow", [{
        name: "slow.example.com",
        timeoutSeconds: 1,
        clientConfig: { url: `${hook.url}/slow`, caBundle: btoa(hook.caPem) },
      }]),
    );
    const late = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(late.status, 500);
    assert.match(
      late.body.message,
      /failed calling webhook "slow\.example\.com": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/slow\?timeout=1s": context deadline exceeded/,
    );
    await t.request("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/slow");

    await configure(
      t,
      webhookConfig("uid", [{ name: "uid.example.com", clientConfig: service("/wrong-uid", hook.caPem) }]),
    );
    const wrongUid = await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    assert.equal(wrongUid.status, 500);
    assert.match(
      wrongUid.body.message,
      /received invalid webhook response: expected response\.uid="[0-9a-f-]+", got "not-the-uid"/,
    );
  });
});

Deno.test("webhooks see updates with the old object and deletes, when their rules ask", async () => {
  await withHook(async (t, hook) => {
    await configure(
      t,
      webhookConfig("all", [{
        name: "all.example.com",
        clientConfig: service("/allow", hook.caPem),
        rules: [{
          operations: ["UPDATE", "DELETE"],
          apiGroups: [""],
          apiVersions: ["v1"],
          resources: ["configmaps"],
          scope: "Namespaced",
        }],
      }]),
    );
    await t.request("POST", CM, { body: { metadata: { name: "c" } } });
    await t.request("PATCH", `${CM}/c`, {
      body: { data: { a: "1" } },
      contentType: "application/merge-patch+json",
    });
    await t.request("DELETE", `${CM}/c`);
    assert.deepEqual(hook.reviews.map((r) => r.request.operation), ["UPDATE", "DELETE"]);
    assert.equal(hook.reviews[0].request.object.data.a, "1");
    assert.equal(hook.reviews[0].request.oldObject.data, undefined);
    assert.equal(hook.reviews[1].request.object, null);
    assert.equal(hook.reviews[1].request.oldObject.metadata.name, "c");
  });
});
