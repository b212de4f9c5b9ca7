/**
 * @module
 * The documentation keeps up with the code: docs/configuration.md names every flag of
 * `src/config.ts` and every field of both QuayIntegration versions. (docs/operations.md's metrics table is
 * checked against a real `/metrics` scrape in tests/ecosystem/monitoring_test.ts.)
 */
import assert from "node:assert/strict";
import { LEGACY_QUAY_INTEGRATION_CRD, QUAY_INTEGRATION_CRD } from "../../src/api/crds.ts";
import { ROOT } from "./helpers.ts";
import { FLAGS } from "../../src/config.ts";

const read = (path: string) => Deno.readTextFile(ROOT + path);

/** The long flag names of config.ts's flag table. */
function flags(): Promise<string[]> {
  return Promise.resolve(FLAGS.map((f) => f.name));
}

function fields(
  crd: typeof QUAY_INTEGRATION_CRD | typeof LEGACY_QUAY_INTEGRATION_CRD,
  part: "spec" | "status",
) {
  const schema = (crd.spec.versions[0] as unknown as {
    schema: { openAPIV3Schema: { properties: Record<string, { properties: Record<string, unknown> }> } };
  }).schema.openAPIV3Schema.properties[part];
  return Object.keys(schema?.properties ?? {});
}

Deno.test("docs/configuration.md documents every flag and every QuayIntegration field", async () => {
  const doc = await read("docs/configuration.md");
  const all = await flags();
  assert.ok(all.length >= 25, `only ${all.length} flags found in src/config.ts`);
  for (const flag of all) assert.ok(doc.includes(`\`--${flag}`), `--${flag} is not documented`);
  for (
    const env of [
      "KUBECONFIG",
      "POD_NAMESPACE",
      "POD_NAME",
      "LOG_LEVEL",
      "WEBHOOK_CERT_DIR",
      "DISABLE_WEBHOOK",
    ]
  ) {
    assert.ok(doc.includes(`\`${env}\``), `${env} is not documented`);
  }
  for (const crd of [QUAY_INTEGRATION_CRD, LEGACY_QUAY_INTEGRATION_CRD]) {
    for (const part of ["spec", "status"] as const) {
      for (const field of fields(crd, part)) {
        assert.ok(doc.includes(`\`${field}\``), `${crd.spec.group} ${part}.${field} is not documented`);
      }
    }
  }
});
