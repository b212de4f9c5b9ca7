/**
 * @module
 * Every kustomize variant of `deploy/`, the examples and `bundle/manifests` are valid for the real
 * kube-apiserver (v1.34, `tests/cluster`): `kubeconform -strict` against schemas generated from
 * that apiserver's OpenAPI after the CRDs they use are installed (ours, monitoring.coreos.com,
 * cert-manager.io, operators.coreos.com; `schemas.ts`), and `kubectl apply --dry-run=server` with
 * strict field validation. A manifest with a misspelt field fails both. (These replace the dry run
 * against the test world with stub CRDs that tests/deploy used to do.)
 */
import assert from "node:assert/strict";
import { parseAllDocuments, stringify } from "yaml";
import { createCertificateAuthority } from "../../src/certs/pki.ts";
import { type RealCluster, startRealCluster } from "../cluster/mod.ts";
import { KUSTOMIZATIONS } from "../deploy/helpers.ts";
import { SCHEMA_TEMPLATE, writeSchemas } from "./schemas.ts";
import { externalCrds, goTool, report, ROOT, run } from "./tools.ts";

/** What the manifests are, as kubectl gets them: `-k` variants and plain files. */
const BUNDLE_FILES = async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}bundle/manifests`)) files.push(`bundle/manifests/${e.name}`);
  return files.sort();
};
const EXAMPLES = [
  "deploy/examples/credentials-secret.yaml",
  "deploy/examples/quayintegration.yaml",
  "deploy/examples/quayintegration-v1alpha1.yaml",
];

async function kustomize(variant: string): Promise<string> {
  const out = await run("kubectl", ["kustomize", `${ROOT}${variant}`]);
  assert.equal(out.code, 0, `kubectl kustomize ${variant}: ${out.stderr}`);
  return out.stdout;
}

interface Kubeconform {
  summary: { valid: number; invalid: number; errors: number; skipped: number };
  resources: { filename: string; kind: string; name: string; status: string; msg: string }[];
}

async function kubeconform(tool: string, schemas: string, yaml: string): Promise<Kubeconform> {
  const out = await run(tool, [
    "-strict",
    "-summary",
    "-output",
    "json",
    "-schema-location",
    `${schemas}/${SCHEMA_TEMPLATE}`,
    "-",
  ], { stdin: yaml });
  return JSON.parse(out.stdout) as Kubeconform;
}

async function dryRun(cluster: RealCluster, yaml: string, namespace?: string) {
  return await cluster.kubectl([
    "apply",
    "--server-side",
    "--dry-run=server",
    "--field-manager=ecosystem",
    "--validate=strict",
    ...(namespace ? ["-n", namespace] : []),
    "-f",
    "-",
  ], { stdin: yaml });
}

Deno.test("deploy/ variants, examples and bundle/manifests: kubeconform -strict and --dry-run=server on kube-apiserver", async (t) => {
  const tool = await goTool("kubeconform");
  const cluster = await startRealCluster({ controllers: false, openshiftCrds: true });
  const schemas = await Deno.makeTempDir({ prefix: "quay-bridge-schemas-" });
  try {
    // The CRDs the manifests instantiate, then the namespace the namespaced ones go to.
    const crds = [...await externalCrds()];
    for (const doc of parseAllDocuments(await kustomize("deploy/crds"))) crds.push(doc.toJS());
    const install = await cluster.kubectl(
      ["apply", "--server-side", "--field-manager=ecosystem", "-f", "-"],
      { stdin: crds.map((c) => stringify(c)).join("---\n") },
    );
    assert.equal(install.code, 0, install.stderr);
    const established = await cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      ...crds.map((c) => `crd/${(c as { metadata: { name: string } }).metadata.name}`),
    ]);
    assert.equal(established.code, 0, established.stderr);
    const ns = await cluster.kubectl(["create", "namespace", "quay-bridge"]);
    assert.equal(ns.code, 0, ns.stderr);
    const started = performance.now();
    const required = crds.flatMap((crd) => {
      const spec = (crd as { spec: { group: string; names: { kind: string }; versions: { name: string }[] } })
        .spec;
      return spec.versions.map((v) => ({ group: spec.group, version: v.name, kind: spec.names.kind }));
    });
    const count = await writeSchemas((path) => cluster.request(path), schemas, required);
    report(
      `kubeconform schemas: ${count} schema files (one per group-version-kind) from the apiserver's /openapi/v3 in ${
        Math.round(performance.now() - started)
      } ms`,
    );

    const inputs: { name: string; yaml: string; namespace?: string }[] = [];
    for (const variant of KUSTOMIZATIONS) {
      inputs.push({ name: `${variant} (-k)`, yaml: await kustomize(variant) });
    }
    // The manual path's MWC, with ${CA_BUNDLE} filled as docs/install.md's envsubst does.
    const ca = await createCertificateAuthority({ commonName: "ecosystem-ca" });
    inputs.push({
      name: "deploy/webhook/manual/mutatingwebhookconfiguration.yaml (CA_BUNDLE filled)",
      yaml: (await Deno.readTextFile(`${ROOT}deploy/webhook/manual/mutatingwebhookconfiguration.yaml`))
        .replaceAll("${CA_BUNDLE}", btoa(ca.certPem)),
    });
    for (const file of EXAMPLES) {
      inputs.push({ name: file, yaml: await Deno.readTextFile(`${ROOT}${file}`), namespace: "quay-bridge" });
    }
    for (const file of await BUNDLE_FILES()) {
      inputs.push({ name: file, yaml: await Deno.readTextFile(`${ROOT}${file}`), namespace: "quay-bridge" });
    }

    await t.step("kubeconform -strict: every resource valid, none skipped", async () => {
      let valid = 0;
      for (const input of inputs) {
        const result = await kubeconform(tool, schemas, input.yaml);
        const bad = result.resources.filter((r) => r.status !== "statusValid");
        assert.deepEqual(bad, [], `${input.name}: ${JSON.stringify(bad, null, 2)}`);
        assert.equal(result.summary.skipped, 0, input.name);
        assert.ok(result.summary.valid > 0, `${input.name}: no resource validated`);
        valid += result.summary.valid;
      }
      report(
        `kubeconform -strict: ${valid} resources in ${inputs.length} inputs valid, 0 invalid, 0 skipped`,
      );
    });

    await t.step("kubectl apply --dry-run=server --validate=strict accepts every input", async () => {
      for (const input of inputs) {
        const out = await dryRun(cluster, input.yaml, input.namespace);
        assert.equal(out.code, 0, `${input.name}:\n${out.stderr}`);
        // The one warning expected: the legacy API's own deprecation notice (its CRD says so).
        const warnings = out.stderr.split("\n").filter((l) =>
          /warning/i.test(l) && !/v1alpha1 QuayIntegration is deprecated/.test(l)
        );
        assert.deepEqual(warnings, [], input.name);
      }
      report(`kubectl apply --dry-run=server: ${inputs.length} inputs accepted by kube-apiserver`);
    });

    await t.step("a misspelt field fails kubeconform and the dry run", async () => {
      const yaml = (await kustomize("deploy")).replace(
        /(\n\s+)imagePullPolicy: /,
        "$1imagePulPolicy: ",
      );
      assert.match(yaml, /imagePulPolicy/);
      const result = await kubeconform(tool, schemas, yaml);
      const invalid = result.resources.filter((r) => r.status === "statusInvalid");
      assert.equal(invalid.length, 1, JSON.stringify(result));
      assert.match(invalid[0]?.msg ?? "", /imagePulPolicy/);
      const out = await dryRun(cluster, yaml);
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, /imagePulPolicy: field not declared in schema/);
    });
  } finally {
    await cluster.close();
    await Deno.remove(schemas, { recursive: true });
  }
});
