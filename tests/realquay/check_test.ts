/**
 * @module
 * `quay-bridge check`'s Quay probes against the real Quay and the test world's Quay: with a
 * super-user token holding every scope, every probe passes on both (each probe is a request both
 * answer cleanly, never an HTML 500); with a refused token both report it.
 */
import assert from "node:assert/strict";
import { checkQuayToken } from "../../src/cli/check.ts";
import { createFetchTransport } from "../../src/http/transport.ts";
import { startQuayWorld } from "../world/quay/mod.ts";
import { startRealQuay } from "./mod.ts";

async function probe(url: string, caPem: string, token: string) {
  const transport = createFetchTransport({ caCerts: [caPem] });
  try {
    return await checkQuayToken("Quay", url, token, transport);
  } finally {
    transport.close();
  }
}

function failures(findings: { check: string; ok: boolean; detail: string }[]): string[] {
  return findings.filter((f) => !f.ok).map((f) => `${f.check}: ${f.detail}`);
}

Deno.test("check: every scope probe passes with a full token on the real Quay and the world's", async () => {
  const quay = await startRealQuay();
  const world = await startQuayWorld({ requireOrgEmail: false });
  try {
    for (
      const [label, url, caPem, token] of [
        ["real Quay", quay.url, quay.caPem, quay.token],
        ["world Quay", world.url, world.caPem, world.adminToken],
      ] as const
    ) {
      const findings = await probe(url, caPem, token);
      assert.deepEqual(failures(findings), [], label);
      for (
        const scope of ["user:read", "org:admin", "repo:read", "repo:create", "repo:admin", "user:admin"]
      ) {
        assert.ok(
          findings.some((f) => f.check === `Quay: token scope ${scope}` && f.ok),
          `${label}: ${scope}`,
        );
      }
    }
  } finally {
    await world.close();
  }
});

Deno.test("check: a refused token is named on the real Quay and the world's", async () => {
  const quay = await startRealQuay();
  const world = await startQuayWorld({ requireOrgEmail: false });
  try {
    for (
      const [label, url, caPem] of [
        ["real Quay", quay.url, quay.caPem],
        ["world Quay", world.url, world.caPem],
      ] as const
    ) {
      const findings = await probe(url, caPem, "not-a-token");
      const valid = findings.find((f) => f.check === "Quay: token valid");
      assert.ok(valid && !valid.ok, `${label}: ${JSON.stringify(findings)}`);
      assert.match(valid.detail, /401/, label);
    }
  } finally {
    await world.close();
  }
});
