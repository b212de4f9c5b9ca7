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

/** The real Quay's address, superuser token and CA: from the environment, else its `quay.env`. */
async function realQuay(): Promise<{ url: string; host: string; token: string; caPem: string }> {
  const file = Deno.env.get("QUAY_ENV") ??
    `${Deno.env.get("HOME")}/.cache/quay-bridge/realquay/quay.env`;
  const vars: Record<string, string> = {};
  const text = await Deno.readTextFile(file).catch(() => "");
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1] as string] = m[2] as string;
  }
  const get = (name: string) => Deno.env.get(name) ?? vars[name];
  const url = get("QUAY_URL");
  const token = get("QUAY_TOKEN");
  const ca = get("QUAY_CA");
  if (!url || !token || !ca) {
    throw new Error(
      `The real Quay is not available: set QUAY_URL, QUAY_TOKEN (a superuser's OAuth token) and QUAY_CA, ` +
        `or point QUAY_ENV at the quay.env its start script writes (looked in ${file})`,
    );
  }
  return { url, host: new URL(url).host, token, caPem: await Deno.readTextFile(ca) };
}

Deno.test("rotation on the real Quay: old token refused by /v2/auth, new one pulls, interval kept across restarts", async () => {
  const real = await realQuay();
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
