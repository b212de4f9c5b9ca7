/**
 * Robot credential rotation against the real Quay (`tests/integration/rotation_scenario.ts`, the
 * same scenario as the test world's): after a rotation the old token is refused by the real
 * registry's `/v2/auth`, the new one in each Secret pulls, and the interval is respected across
 * operator restarts. The cluster is the test world's; Quay is real and shared, so every name has a
 * random suffix and the organization is deleted at the end.
 */
import assert from "node:assert/strict";
import { CREDENTIALS_SECRET, OPERATOR_NAMESPACE, startBridge } from "../integration/harness.ts";
import { rotationScenario } from "../integration/rotation_scenario.ts";
import { jsonClient } from "../walkthrough/setup.ts";
import { startRealQuay } from "./mod.ts";

Deno.test("rotation on the real Quay: old token refused by /v2/auth, new one pulls, interval kept across restarts", async () => {
  const real = await startRealQuay();
  const quay = jsonClient(real.url, real.token, real.caPem);
  const clusterId = `h10rot${crypto.randomUUID().slice(0, 6)}`;
  const organization = `${clusterId}_rotate`;
  const b = await startBridge({ integration: false, start: false, logLevel: "info" });
  try {
    assert.equal(
      (await quay.call("GET", "/api/v1/user/")).status,
      200,
      "the real Quay answers with the token",
    );
    await b.kube.ok("PUT", `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${CREDENTIALS_SECRET}`, {
      metadata: { name: CREDENTIALS_SECRET, namespace: OPERATOR_NAMESPACE },
      stringData: { token: real.token },
    });
    await b.applyIntegration("quay", {
      clusterID: clusterId,
      credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: CREDENTIALS_SECRET, key: "token" },
      quayHostname: real.url,
      caBundle: real.caPem,
      credentialRotation: { interval: "1h" },
    });
    await b.startOperator();
    await b.createProject("rotate");
    await rotationScenario({
      b,
      quay,
      registryUrl: real.url,
      registryHost: real.host,
      caPem: real.caPem,
      namespace: "rotate",
      organization,
      clusterId,
      flags: [],
    }, (line) => Deno.stdout.writeSync(new TextEncoder().encode(`real Quay: ${line}\n`)));
  } finally {
    await b.close();
    await quay.call("DELETE", `/api/v1/organization/${organization}`);
    quay.close();
  }
});
