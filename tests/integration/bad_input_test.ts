/**
 * Bad input: each problem is a condition and an Event with a reason that names the fix; nothing
 * crashes and the namespaces of the good QuayIntegration keep syncing.
 */
import assert from "node:assert/strict";
import {
  type Bridge,
  CREDENTIALS_SECRET,
  OPERATOR_NAMESPACE,
  startBridge,
  synced,
  until,
} from "./harness.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

async function condition(b: Bridge, cr: string, type: string): Promise<Condition | undefined> {
  const got = await b.kube.call("GET", `/apis/quay.redhat.com/v1/quayintegrations/${cr}`);
  return (got.body?.status?.conditions ?? []).find((c: Condition) => c.type === type);
}

/** Waits for the condition, and for its message to match `message` (the status is written asynchronously). */
async function expectCondition(
  b: Bridge,
  cr: string,
  type: string,
  status: string,
  reason: string,
  message?: RegExp,
) {
  return await until(`${cr} ${type}=${status} (${reason})${message ? ` ${message}` : ""}`, async () => {
    const c = await condition(b, cr, type);
    return c && c.status === status && c.reason === reason && (!message || message.test(c.message))
      ? c
      : undefined;
  }, 15_000);
}

async function expectEvent(b: Bridge, objectName: string, reason: string) {
  return await until(`Event ${reason} on ${objectName}`, async () => {
    const list = await b.kube.ok("GET", "/api/v1/events");
    return list.items.find((e: { involvedObject: { name: string }; reason: string }) =>
      e.involvedObject.name === objectName && e.reason === reason
    );
  }, 15_000);
}

Deno.test("every bad QuayIntegration gets a condition and an Event with a reason; the good one keeps syncing", async () => {
  const b = await startBridge({ integrationSpec: { allowlistNamespaces: ["good", "shared", "a--b"] } });
  try {
    await b.kube.ok("POST", `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      metadata: { name: "wrong-token" },
      stringData: { token: "not-a-real-token" },
    });
    const spec = (extra: Record<string, unknown>) => b.integrationSpec(extra);
    await b.applyIntegration(
      "bad-host",
      spec({ quayHostname: "quay.example.com/path", allowlistNamespaces: ["ns-a"] }),
    );
    await b.applyIntegration(
      "missing-secret",
      spec({
        credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: "nope", key: "token" },
        allowlistNamespaces: ["ns-b"],
      }),
    );
    await b.applyIntegration(
      "missing-key",
      spec({
        credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: CREDENTIALS_SECRET, key: "nokey" },
        allowlistNamespaces: ["ns-c"],
      }),
    );
    await b.applyIntegration(
      "bad-token",
      spec({
        credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: "wrong-token", key: "token" },
        allowlistNamespaces: ["ns-d"],
      }),
    );
    await b.applyIntegration(
      "unreachable",
      spec({ quayHostname: "https://127.0.0.1:1", allowlistNamespaces: ["ns-e"] }),
    );
    await b.applyIntegration("other", spec({ allowlistNamespaces: ["shared"] }));

    for (const ns of ["good", "shared", "a--b", "ns-a", "ns-b", "ns-c", "ns-d", "ns-e"]) {
      await b.createProject(ns);
    }

    const host = await expectCondition(b, "bad-host", "Ready", "False", "InvalidQuayHostname");
    assert.match(host.message, /quayHostname/);
    const badHost = await b.kube.ok("GET", "/apis/quay.redhat.com/v1/quayintegrations/bad-host");
    assert.equal(host.observedGeneration, badHost.metadata.generation);
    await expectEvent(b, "bad-host", "InvalidQuayHostname");

    const secret = await expectCondition(b, "missing-secret", "CredentialsValid", "False", "SecretNotFound");
    assert.match(secret.message, /nope/);
    await expectEvent(b, "missing-secret", "SecretNotFound");

    const key = await expectCondition(b, "missing-key", "CredentialsValid", "False", "SecretKeyMissing");
    assert.match(key.message, /nokey/);
    await expectEvent(b, "missing-key", "SecretKeyMissing");

    await expectCondition(b, "bad-token", "CredentialsValid", "False", "TokenInvalid");
    await expectEvent(b, "bad-token", "CredentialsInvalid");

    await expectCondition(b, "unreachable", "QuayReachable", "False", "QuayUnreachable");
    await expectEvent(b, "unreachable", "QuayUnreachable");

    // Two CRs selecting one namespace: both report it, neither manages it.
    for (const cr of ["quay", "other"]) {
      const overlap = await expectCondition(b, cr, "Degraded", "True", "OverlappingSelection");
      assert.match(overlap.message, /shared/);
    }
    await expectEvent(b, "shared", "OverlappingIntegrations");
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_shared")).status, 404);

    // A namespace whose organization name Quay would refuse.
    await expectEvent(b, "a--b", "InvalidOrganizationName");
    const degraded = await expectCondition(
      b,
      "quay",
      "Degraded",
      "True",
      "OverlappingSelection",
      /a--b \(InvalidOrganizationName\)/,
    );
    assert.match(degraded.message, /shared/);

    // Meanwhile the good namespace is fully synced, and the operator is still running.
    await synced(b, "good");
    const running = await Promise.race([
      b.running?.exited,
      new Promise((r) => setTimeout(() => r("running"), 50)),
    ]);
    assert.equal(running, "running");

    // Fixing a CR applies at once: the overlapping CR lets go, the shared namespace syncs.
    await b.kube.ok("DELETE", "/apis/quay.redhat.com/v1/quayintegrations/other");
    await synced(b, "shared");
  } finally {
    await b.close();
  }
});
