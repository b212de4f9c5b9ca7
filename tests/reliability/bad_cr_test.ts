/**
 * Bad QuayIntegrations (a revoked token, an unreachable host, a missing Secret, an invalid spec)
 * with namespaces to manage: each gets its condition, and none drives a hot loop of failing
 * calls — Quay and the API server see a trickle, not a stream.
 */
import assert from "node:assert/strict";
import { type Bridge, OPERATOR_NAMESPACE, startBridge, until } from "../integration/harness.ts";
import { figure, size } from "./suite.ts";

const WINDOW_MS = size(10_000, 60_000);

async function conditionReason(b: Bridge, name: string, type: string): Promise<string | undefined> {
  const got = await b.kube.call("GET", `/apis/quay.redhat.com/v1/quayintegrations/${name}`);
  const c = (got.body?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
  return c?.status === "False" ? c.reason : undefined;
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

Deno.test("bad QuayIntegrations: conditions, and no hot loop of failing calls", async () => {
  const b = await startBridge({ integration: false });
  try {
    const revoked = b.quayWorld.createToken({
      user: "revoked",
      superuser: true,
      scopes: ["org:admin", "user:read"],
    });
    b.quayWorld.revokeToken(revoked);
    await b.kube.ok("POST", `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      metadata: { name: "revoked" },
      stringData: { token: revoked },
    });
    const bad: [string, Record<string, unknown>, string, string][] = [
      [
        "revoked",
        {
          credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: "revoked", key: "token" },
        },
        "CredentialsValid",
        "TokenInvalid",
      ],
      ["unreachable", { quayHostname: "https://127.0.0.1:1" }, "QuayReachable", "QuayUnreachable"],
      [
        "no-secret",
        {
          credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: "nope", key: "token" },
        },
        "CredentialsValid",
        "SecretNotFound",
      ],
      ["invalid", { quayHostname: "quay.example.com/path" }, "Ready", "InvalidQuayHostname"],
    ];
    for (const [name, spec, ,] of bad) {
      await b.applyIntegration(
        name,
        b.integrationSpec({
          ...spec,
          clusterID: name.replace("-", ""),
          allowlistNamespaces: [`${name}-a`, `${name}-b`],
        }),
      );
      await b.createProject(`${name}-a`);
      await b.createProject(`${name}-b`);
    }
    for (const [name, , type, reason] of bad) {
      await until(
        `${name} ${type}=False ${reason}`,
        async () => await conditionReason(b, name, type) === reason,
        20_000,
      );
    }
    b.quayWorld.resetCalls();
    const kubeBefore = total(b.kubeWorld.requestCounts());
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const quayCalls = total(b.quayWorld.calls());
    const kubeCalls = total(b.kubeWorld.requestCounts()) - kubeBefore;
    const perSecond = (n: number) => n / (WINDOW_MS / 1000);
    // Eight namespaces and four integrations: a loop would be hundreds a second.
    assert.ok(perSecond(quayCalls) <= 2, `${quayCalls} Quay calls in ${WINDOW_MS} ms`);
    assert.ok(perSecond(kubeCalls) <= 5, `${kubeCalls} API calls in ${WINDOW_MS} ms`);
    assert.equal(
      await Promise.race([b.running?.exited, new Promise((r) => setTimeout(() => r("running"), 10))]),
      "running",
    );
    figure(
      "bad CRs (revoked token, unreachable, missing Secret, invalid spec)",
      bad.length,
      bad.length,
      `${quayCalls} Quay and ${kubeCalls} API calls in ${WINDOW_MS / 1000} s`,
    );
  } finally {
    await b.close();
  }
});
