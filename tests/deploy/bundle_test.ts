/**
 * @module
 * The OLM bundle matches `deploy/` (it is generated from it; `deno task bundle:check` is the same
 * comparison) and says what we chose: AllNamespaces only, descriptors for every field, the kustomize
 * Deployment and RBAC, the webhook, and the operator image by digest. Whether it is a valid bundle
 * is for the OLM validators (tests/ecosystem/olm_test.ts).
 */
import assert from "node:assert/strict";
import { QUAY_INTEGRATION_CRD } from "../../src/api/crds.ts";
import { VERSION } from "../../src/version.ts";
import {
  bundleFiles,
  BundleInputError,
  imageByDigest,
  PLACEHOLDER_DIGEST,
  schemaPaths,
} from "../../scripts/bundle.ts";
import { type Doc, kustomizeDocs, only, readYaml, ROOT, walk } from "./helpers.ts";

type Csv = Doc & {
  metadata: { name: string; annotations: Record<string, string> };
  spec: {
    version: string;
    minKubeVersion: string;
    installModes: { type: string; supported: boolean }[];
    customresourcedefinitions: {
      owned: {
        name: string;
        version: string;
        specDescriptors?: { path: string; "x-descriptors": string[] }[];
        statusDescriptors?: { path: string }[];
      }[];
    };
    install: {
      strategy: string;
      spec: {
        clusterPermissions: { serviceAccountName: string; rules: unknown[] }[];
        permissions: { serviceAccountName: string; rules: unknown[] }[];
        deployments: {
          name: string;
          spec: { replicas: number; template: { spec: Record<string, unknown> } };
        }[];
      };
    };
    webhookdefinitions: Record<string, unknown>[];
    relatedImages?: { name: string; image: string }[];
  };
};

async function csv(): Promise<Csv> {
  const [doc] = await readYaml("bundle/manifests/quay-bridge.clusterserviceversion.yaml");
  return doc as Csv;
}

Deno.test("bundle/ is what scripts/bundle.ts makes from deploy/ (deno task bundle:check)", async () => {
  const files = await bundleFiles();
  for (const [path, text] of Object.entries(files)) {
    assert.equal(await Deno.readTextFile(ROOT + path), text, `${path} is stale: run deno task bundle`);
  }
  // bundle/icon.svg is the generator's input (the CSV's spec.icon), not its output.
  const present = (await walk("bundle")).filter((p) => p !== "bundle/icon.svg");
  assert.deepEqual(present, Object.keys(files).sort(), "bundle/ holds files the script does not make");
});

Deno.test("the CSV: this version, AllNamespaces only, this package", async () => {
  // Formats (semver, CSV name, alm-examples JSON, install modes, annotations) are the OLM
  // validators' to judge (tests/ecosystem/olm_test.ts); what is checked here is our choice.
  const c = await csv();
  assert.equal(c.metadata.name, `quay-bridge.v${VERSION}`);
  assert.equal(c.spec.version, VERSION);
  assert.deepEqual(
    c.spec.installModes.filter((m) => m.supported).map((m) => m.type),
    ["AllNamespaces"],
  );
  const [annotations] = await readYaml("bundle/metadata/annotations.yaml") as [
    { annotations: Record<string, string> },
  ];
  assert.equal(annotations.annotations["operators.operatorframework.io.bundle.package.v1"], "quay-bridge");
});

Deno.test("the operator image is referenced by digest everywhere, and relatedImages lists it", async () => {
  const c = await csv();
  const [deployment] = await readYaml("deploy/operator/deployment.yaml") as [
    { spec: { template: { spec: { containers: { image: string }[] } } } },
  ];
  const tagged = deployment.spec.template.spec.containers[0]?.image ?? "";
  const expected = imageByDigest(tagged, PLACEHOLDER_DIGEST);
  assert.equal(expected, `quay.io/quay-bridge/quay-bridge@${PLACEHOLDER_DIGEST}`);
  const images = c.spec.install.spec.deployments.flatMap((d) =>
    (d.spec.template.spec.containers as { image: string }[]).map((x) => x.image)
  );
  assert.deepEqual(images, [expected]);
  assert.equal(c.metadata.annotations.containerImage, expected);
  // Every image the operator runs (it starts no other pods), by digest.
  assert.deepEqual(c.spec.relatedImages, [{ name: "quay-bridge", image: expected }]);
  assert.equal(c.metadata.annotations["features.operators.openshift.io/disconnected"], "true");
});

Deno.test("scripts/bundle.ts takes the digest as input and refuses the placeholder for a release", async () => {
  const digest = `sha256:${"ab".repeat(32)}`;
  const files = await bundleFiles({ imageDigest: digest, release: true });
  const released = files["bundle/manifests/quay-bridge.clusterserviceversion.yaml"] ?? "";
  assert.ok(released.includes(`quay.io/quay-bridge/quay-bridge@${digest}`));
  assert.ok(!released.includes(PLACEHOLDER_DIGEST));
  await assert.rejects(bundleFiles({ release: true }), BundleInputError);
  await assert.rejects(bundleFiles({ imageDigest: PLACEHOLDER_DIGEST, release: true }), /placeholder/);
  await assert.rejects(bundleFiles({ imageDigest: "sha256:1234" }), /64 lowercase hex/);
  // The command line: exit 2 with the reason, nothing written.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", `${ROOT}scripts/bundle.ts`, "--check", "--release"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /--release needs --image-digest/);
});

Deno.test("the CSV describes every field of quay.redhat.com/v1 and owns both CRDs", async () => {
  const c = await csv();
  const owned = c.spec.customresourcedefinitions.owned;
  assert.deepEqual(owned.map((o) => `${o.name}/${o.version}`).sort(), [
    "quayintegrations.quay.redhat.com/v1",
    "quayintegrations.redhatcop.redhat.io/v1alpha1",
  ]);
  const v1 = owned.find((o) => o.version === "v1");
  const schema = (QUAY_INTEGRATION_CRD.spec.versions[0] as unknown as {
    schema: { openAPIV3Schema: { properties: Record<string, Record<string, unknown>> } };
  }).schema.openAPIV3Schema.properties;
  assert.deepEqual(
    v1?.specDescriptors?.map((d) => d.path).sort(),
    schemaPaths(schema.spec as Record<string, unknown>).sort(),
  );
  assert.ok(
    v1?.specDescriptors?.some((d) =>
      d.path === "credentialsSecret" && d["x-descriptors"][0]?.endsWith("Secret")
    ),
  );
  assert.ok(v1?.statusDescriptors?.some((d) => d.path === "conditions"));
  for (const name of ["quay.redhat.com", "redhatcop.redhat.io"]) {
    assert.equal(
      (await Deno.readTextFile(`${ROOT}bundle/manifests/${name}_quayintegrations.yaml`)).replace(
        /^#.*\n/,
        "",
      ),
      (await Deno.readTextFile(`${ROOT}deploy/crds/${name}_quayintegrations.yaml`)).replace(/^#.*\n/, ""),
    );
  }
});

Deno.test("the CSV's deployment and permissions mirror deploy/", async () => {
  const c = await csv();
  const docs = await kustomizeDocs("deploy");
  const deployment = only(docs, "Deployment");
  const strategy = c.spec.install.spec;
  assert.equal(c.spec.install.strategy, "deployment");
  assert.equal(strategy.deployments.length, 1);
  const olm = strategy.deployments[0];
  assert.equal(olm?.name, deployment.metadata?.name);
  // The same pod, except the certificate Secret volume, which OLM injects at the same path, and
  // the image, which OLM runs by digest.
  const kustomizeSpec = structuredClone(deployment.spec) as {
    template: {
      spec: {
        volumes: { name: string; secret?: unknown }[];
        containers: { image: string; volumeMounts: { name: string }[] }[];
      };
    };
  };
  const pod = kustomizeSpec.template.spec;
  const certVolume = pod.volumes.find((v) => v.secret)?.name;
  pod.volumes = pod.volumes.filter((v) => v.name !== certVolume);
  for (const container of pod.containers) {
    container.volumeMounts = container.volumeMounts.filter((m) => m.name !== certVolume);
    container.image = imageByDigest(container.image, PLACEHOLDER_DIGEST);
  }
  assert.deepEqual(olm?.spec, kustomizeSpec);
  const sa = only(docs, "ServiceAccount").metadata?.name;
  assert.deepEqual(strategy.clusterPermissions, [{
    serviceAccountName: sa,
    rules: only(docs, "ClusterRole").rules,
  }]);
  assert.deepEqual(strategy.permissions, [{ serviceAccountName: sa, rules: only(docs, "Role").rules }]);
});

Deno.test("the CSV's webhook definition is the kustomize MutatingWebhookConfiguration", async () => {
  const c = await csv();
  const [mwc] = await readYaml("deploy/webhook/mwc/mutatingwebhookconfiguration.yaml") as [
    Doc & { webhooks: Record<string, unknown>[] },
  ];
  const hook = mwc.webhooks[0] as Record<string, unknown>;
  assert.equal(c.spec.webhookdefinitions.length, 1);
  const def = c.spec.webhookdefinitions[0] as Record<string, unknown>;
  assert.equal(def.type, "MutatingAdmissionWebhook");
  assert.equal(def.deploymentName, "quay-bridge");
  assert.equal(def.containerPort, 443);
  assert.equal(def.targetPort, 8443);
  assert.equal(def.webhookPath, "/admissionwebhook");
  assert.equal(def.generateName, hook.name);
  for (const key of ["rules", "failurePolicy", "sideEffects", "timeoutSeconds", "admissionReviewVersions"]) {
    assert.deepEqual(def[key], hook[key], key);
  }
});
