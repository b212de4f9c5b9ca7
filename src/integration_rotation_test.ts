/**
 * `spec.credentialRotation` of a QuayIntegration: durations as Kubernetes writes them, a clear
 * problem for anything else, and no rotation for the predecessor's API.
 */
import assert from "node:assert/strict";
import { API_LEGACY, API_V1, parseIntegration, parseKubeDuration } from "./integration_spec.ts";

const base = {
  credentialsSecret: { namespace: "quay-bridge", name: "quay-integration" },
  quayHostname: "https://quay.example.com",
};

function parse(spec: Record<string, unknown>, apiVersion: string = API_V1) {
  return parseIntegration({ apiVersion, kind: "QuayIntegration", metadata: { name: "q" }, spec });
}

Deno.test("parseKubeDuration reads metav1.Duration strings and nothing else", () => {
  assert.equal(parseKubeDuration("720h"), 720 * 3_600_000);
  assert.equal(parseKubeDuration("1h30m"), 90 * 60_000);
  assert.equal(parseKubeDuration("1.5h"), 90 * 60_000);
  assert.equal(parseKubeDuration("90s"), 90_000);
  assert.equal(parseKubeDuration("250ms"), 250);
  for (const bad of ["", "30", "30d", "30 days", "h", "-1h", "1h 30m"]) {
    assert.equal(parseKubeDuration(bad), undefined, bad);
  }
});

Deno.test("spec.credentialRotation: an interval is parsed; absent means on request only", () => {
  const r = parse({ ...base, credentialRotation: { interval: "720h" } });
  assert.ok(r.ok);
  assert.deepEqual(r.integration.credentialRotation, { intervalMs: 720 * 3_600_000 });
  const none = parse(base);
  assert.ok(none.ok);
  assert.equal(none.integration.credentialRotation, undefined);
});

Deno.test("spec.credentialRotation: a bad or too short interval is a problem naming the field", () => {
  for (const value of [{ interval: "30 days" }, { interval: "30s" }, {}, "720h", { interval: 720 }]) {
    const r = parse({ ...base, credentialRotation: value });
    assert.ok(!r.ok, JSON.stringify(value));
    assert.deepEqual(r.problems.map((p) => p.reason), ["InvalidCredentialRotation"]);
    assert.match(
      r.problems[0]?.message ?? "",
      /spec\.credentialRotation\.interval must be a duration of at least 1m/,
    );
  }
});

Deno.test("spec.credentialRotation is a v1 field: the predecessor's API never rotates", () => {
  const r = parse({
    quayHostname: "https://quay.example.com",
    credentialsSecretName: "quay-bridge/s",
    credentialRotation: { interval: "1h" },
  }, API_LEGACY);
  assert.ok(r.ok);
  assert.equal(r.integration.credentialRotation, undefined);
});
