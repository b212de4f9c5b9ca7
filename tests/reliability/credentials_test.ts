/**
 * A QuayIntegration may take its credentials only from the operator's namespace (or the ones the
 * admin listed with `--credentials-namespaces`): a reference to any other namespace is refused
 * with a condition, and nothing is sent to the integration's host, so writing a QuayIntegration
 * does not let anyone read the cluster's Secrets.
 */
import assert from "node:assert/strict";
import { type Bridge, OPERATOR_NAMESPACE, startBridge, until } from "../integration/harness.ts";
import { figure } from "./suite.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/** An HTTP server that records the Authorization header of every request. */
function attacker(): { url: string; seen: string[]; close(): Promise<void> } {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    seen.push(request.headers.get("authorization") ?? "");
    return Response.json({});
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

async function condition(b: Bridge, path: string, type: string): Promise<Condition | undefined> {
  const got = await b.kube.call("GET", path);
  return (got.body?.status?.conditions ?? []).find((c: Condition) => c.type === type);
}

async function refused(b: Bridge, path: string): Promise<Condition> {
  return await until(`${path} refused`, async () => {
    const c = await condition(b, path, "Ready");
    return c?.status === "False" && c.reason === "CredentialsNamespaceNotAllowed" ? c : undefined;
  }, 15_000);
}

Deno.test("a credentials Secret outside the operator's namespace is refused and never sent", async () => {
  const evil = attacker();
  const b = await startBridge({ integration: false });
  try {
    await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "victim" } });
    await b.kube.ok("POST", "/api/v1/namespaces/victim/secrets", {
      metadata: { name: "db-creds" },
      stringData: { password: "victim-password-7f3a", token: "victim-token-7f3a" },
    });
    await b.createProject("team");
    await b.applyIntegration("evil", {
      clusterID: "evil",
      credentialsSecret: { namespace: "victim", name: "db-creds", key: "password" },
      quayHostname: evil.url,
      insecureRegistry: true,
    });
    await b.kube.ok("POST", "/apis/redhatcop.redhat.io/v1alpha1/quayintegrations", {
      apiVersion: "redhatcop.redhat.io/v1alpha1",
      kind: "QuayIntegration",
      metadata: { name: "evil-legacy" },
      spec: {
        clusterID: "evillegacy",
        credentialsSecretName: "victim/db-creds",
        quayHostname: evil.url,
        insecureRegistry: true,
      },
    });
    const v1 = await refused(b, "/apis/quay.redhat.com/v1/quayintegrations/evil");
    assert.match(v1.message, /"victim"/);
    assert.match(v1.message, new RegExp(`"${OPERATOR_NAMESPACE}"`));
    assert.match(v1.message, /--credentials-namespaces/);
    await refused(b, "/apis/redhatcop.redhat.io/v1alpha1/quayintegrations/evil-legacy");
    // Give the operator time in which it would have called (it calls at once when it accepts).
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual(evil.seen, [], "no request reached the integration's host");
    const text = JSON.stringify(b.logs);
    assert.ok(!text.includes("victim-password-7f3a") && !text.includes("victim-token-7f3a"));
    figure(
      "QuayIntegrations naming another namespace's Secret (v1, legacy)",
      2,
      2,
      `${evil.seen.length} requests sent`,
    );
  } finally {
    await b.close();
    await evil.close();
  }
});

Deno.test("--credentials-namespaces lets the admin name where credentials may live", async () => {
  const b = await startBridge({ integration: false, start: false });
  try {
    await b.kube.ok("POST", "/api/v1/namespaces", { metadata: { name: "quay-creds" } });
    await b.kube.ok("POST", "/api/v1/namespaces/quay-creds/secrets", {
      metadata: { name: "token" },
      stringData: { token: b.quayWorld.adminToken },
    });
    await b.applyIntegration(
      "quay",
      b.integrationSpec({ credentialsSecret: { namespace: "quay-creds", name: "token", key: "token" } }),
    );
    await b.startOperator(["--credentials-namespaces", `${OPERATOR_NAMESPACE},quay-creds`]);
    await until("credentials accepted", async () => {
      const c = await condition(b, "/apis/quay.redhat.com/v1/quayintegrations/quay", "CredentialsValid");
      return c?.status === "True";
    }, 15_000);
  } finally {
    await b.close();
  }
});
