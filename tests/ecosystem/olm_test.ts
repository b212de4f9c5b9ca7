/**
 * @module
 * `bundle/` passes the Operator Framework's own validators (operator-framework/api v0.30.0, the
 * library behind `operator-sdk bundle validate --select-optional suite=operatorframework`) with
 * no error and no warning beyond {@linkcode ACCEPTED_WARNINGS}; and a bundle with a broken CSV
 * field fails them, so this test can fail.
 */
import assert from "node:assert/strict";
import { cp } from "node:fs/promises";
import { parse, stringify } from "yaml";
import { MIN_KUBE_VERSION } from "../../scripts/bundle.ts";
import { goTool, report, ROOT, run } from "./tools.ts";

/** One finding of tests/ecosystem/olm. */
export interface Finding {
  validator: string;
  severity: "Error" | "Warning";
  type: string;
  field?: string;
  detail: string;
  object?: string;
}

/**
 * Warnings deliberately not fixed, each with its reason (matched against the detail). Empty: every
 * warning the validators raised was fixed in scripts/bundle.ts.
 */
export const ACCEPTED_WARNINGS: { detail: RegExp; reason: string }[] = [];

/** Runs the validators on a bundle directory. */
export async function validateBundle(
  dir: string,
): Promise<{ code: number; findings: Finding[]; summary: string }> {
  const tool = await goTool("olm");
  // Deprecated and removed APIs are judged against the Kubernetes the e2e suite runs (1.34), the
  // newest the bundle is tested on; minKubeVersion (1.25, OpenShift 4.12) is older.
  const out = await run(tool, ["-k8s-version", "1.34", dir]);
  const findings = out.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Finding);
  return { code: out.code, findings, summary: out.stderr.trim() };
}

Deno.test("bundle/ passes the OLM validators: 0 errors, no unexplained warning", async () => {
  const { code, findings, summary } = await validateBundle(`${ROOT}bundle`);
  // The validators' own report, for the CI log.
  report([summary, ...findings.map((f) => `  ${f.severity} [${f.validator}] ${f.detail}`)].join("\n"));
  const errors = findings.filter((f) => f.severity === "Error");
  assert.deepEqual(errors, [], "the OLM validators found errors");
  assert.equal(code, 0, summary);
  const unexplained = findings.filter((f) =>
    f.severity === "Warning" && !ACCEPTED_WARNINGS.some((a) => a.detail.test(f.detail))
  );
  assert.deepEqual(unexplained, [], "warnings without a reason in ACCEPTED_WARNINGS");
  assert.match(summary, /^olm-validate: \d+ validators, 0 errors/);
  assert.match(MIN_KUBE_VERSION, /^1\.\d+\.\d+$/);
});

Deno.test("a bundle with a broken CSV field fails the OLM validators", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-olm-" });
  try {
    await cp(`${ROOT}bundle`, dir, { recursive: true });
    const path = `${dir}/manifests/quay-bridge.clusterserviceversion.yaml`;
    const csv = parse(await Deno.readTextFile(path)) as {
      spec: { installModes: { type: string; supported: boolean }[]; relatedImages?: unknown };
      metadata: { annotations: Record<string, string> };
    };
    // No install mode supported: OLM could not install it anywhere.
    for (const mode of csv.spec.installModes) mode.supported = false;
    // alm-examples that are not JSON: the console could not show them.
    csv.metadata.annotations["alm-examples"] = "[{";
    await Deno.writeTextFile(path, stringify(csv));
    const { code, findings } = await validateBundle(dir);
    const errors = findings.filter((f) => f.severity === "Error").map((f) => f.detail);
    assert.equal(code, 1);
    assert.ok(errors.some((d) => /install ?mode/i.test(d)), errors.join("\n"));
    assert.ok(errors.some((d) => /example/i.test(d)), errors.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
