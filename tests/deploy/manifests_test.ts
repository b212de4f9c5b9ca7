/**
 * @module
 * The install manifests of `deploy/`: every file parses, every kustomization builds, the operator
 * runs hardened and highly available, the webhook is registered narrowly, each webhook variant wires
 * its certificates. Schema validity and the server-side dry run on the real kube-apiserver are in
 * tests/ecosystem/manifests_test.ts.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseConfig } from "../../src/config.ts";
import { VERSION } from "../../src/version.ts";
import { type Doc, KUSTOMIZATIONS, kustomizeDocs, only, readYaml, ROOT, walk } from "./helpers.ts";

const DEFAULTS = parseConfig({ args: ["run"], env: () => undefined });

type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
    runAsNonRoot?: boolean;
  };
  volumeMounts?: { name: string; mountPath: string }[];
};
type PodSpec = {
  serviceAccountName: string;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string }; emptyDir?: unknown }[];
};

function podOf(deployment: Doc): PodSpec {
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

type Webhook = {
  name: string;
  admissionReviewVersions: string[];
  clientConfig: {
    service?: { namespace: string; name: string; path: string; port: number };
    caBundle?: string;
  };
  rules: { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }[];
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  namespaceSelector?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] };
};

Deno.test("every YAML and JSON file under deploy/ and bundle/ parses", async () => {
  const files = [...await walk("deploy"), ...await walk("bundle")];
  let checked = 0;
  for (const path of files) {
    const text = await Deno.readTextFile(ROOT + path);
    if (path.endsWith(".json")) {
      JSON.parse(text);
    } else if (/\.ya?ml$|\/Kustomization$/.test(path)) {
      const docs = await readYaml(path);
      assert.ok(docs.length > 0, `${path} holds no document`);
      for (const doc of path.startsWith("bundle/metadata/") ? [] : docs) {
        assert.equal(typeof doc.apiVersion, "string", `${path}: a document without apiVersion`);
        assert.equal(typeof doc.kind, "string", `${path}: a document without kind`);
      }
    } else {
      continue;
    }
    checked++;
  }
  assert.ok(checked >= 25, `only ${checked} files checked`);
});

for (const dir of KUSTOMIZATIONS) {
  Deno.test(`kubectl kustomize ${dir} builds`, async () => {
    const docs = await kustomizeDocs(dir);
    assert.ok(docs.length > 0);
    for (const doc of docs) {
      const ns = doc.metadata?.namespace;
      if (ns !== undefined) assert.equal(ns, "quay-bridge", `${doc.kind} ${doc.metadata?.name} in ${ns}`);
    }
  });
}

Deno.test("the base holds the namespace, both CRDs, the RBAC, the operator, its Services and PDB", async () => {
  const docs = await kustomizeDocs("deploy");
  const kinds = docs.map((d) => `${d.kind}/${d.metadata?.name}`).sort();
  assert.deepEqual(kinds, [
    "ClusterRole/quay-bridge",
    "ClusterRoleBinding/quay-bridge",
    "CustomResourceDefinition/quayintegrations.quay.redhat.com",
    "CustomResourceDefinition/quayintegrations.redhatcop.redhat.io",
    "Deployment/quay-bridge",
    "Namespace/quay-bridge",
    "PodDisruptionBudget/quay-bridge",
    "Role/quay-bridge",
    "RoleBinding/quay-bridge",
    "Service/quay-bridge-metrics",
    "Service/quay-bridge-webhook",
    "ServiceAccount/quay-bridge-operator",
  ]);
  // deploy/namespace.yaml (read by the e2e suite and the world's kubectl tests) is the same file.
  assert.deepEqual(await readYaml("deploy/namespace.yaml"), await readYaml("deploy/operator/namespace.yaml"));
});

Deno.test("the Deployment runs two hardened replicas of this version with probes and the downward API", async () => {
  const docs = await kustomizeDocs("deploy");
  const deployment = only(docs, "Deployment", "quay-bridge");
  const spec = deployment.spec as { replicas: number; selector: { matchLabels: Record<string, string> } };
  assert.equal(spec.replicas, 2);
  const pod = podOf(deployment);
  assert.equal(pod.serviceAccountName, only(docs, "ServiceAccount").metadata?.name);
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0] as Container;
  assert.equal(c.image, `quay.io/quay-bridge/quay-bridge:${VERSION}`);
  assert.deepEqual(c.args, ["run"]);
  assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
  for (const key of ["cpu", "memory"]) {
    assert.ok(c.resources?.requests?.[key], `requests.${key}`);
    assert.ok(c.resources?.limits?.[key], `limits.${key}`);
  }
  const port = (name: string) => c.ports?.find((p) => p.name === name)?.containerPort;
  assert.equal(port("webhook"), DEFAULTS.webhookPort);
  assert.equal(port("metrics"), DEFAULTS.opsPort);
  assert.equal(c.livenessProbe?.httpGet?.path, "/healthz");
  assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
  assert.equal(c.livenessProbe?.httpGet?.port, "metrics");
  assert.equal(c.readinessProbe?.httpGet?.port, "metrics");
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
  assert.equal(env.POD_NAME?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
  assert.equal(env.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
  // The certificate Secret is mounted where WEBHOOK_CERT_DIR points (the upstream default path).
  const certDir = env.WEBHOOK_CERT_DIR?.value;
  assert.equal(certDir, DEFAULTS.webhookCertDir);
  const certMount = c.volumeMounts?.find((m) => m.mountPath === certDir);
  assert.ok(certMount, "no volume at the certificate directory");
  const certVolume = pod.volumes?.find((v) => v.name === certMount.name);
  assert.equal(certVolume?.secret?.secretName, "quay-bridge-webhook-tls");
  assert.ok(c.volumeMounts?.some((m) => m.mountPath === "/tmp"), "a writable /tmp");
  // The PDB and both Services select the pods.
  const labels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template
    .metadata.labels;
  const selects = (selector: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(selects(spec.selector.matchLabels));
  const pdb = only(docs, "PodDisruptionBudget").spec as {
    minAvailable: number;
    selector: { matchLabels: Record<string, string> };
  };
  assert.equal(pdb.minAvailable, 1);
  assert.ok(selects(pdb.selector.matchLabels));
  const webhookService = only(docs, "Service", DEFAULTS.webhookServiceName).spec as {
    selector: Record<string, string>;
    ports: { port: number; targetPort: string }[];
  };
  assert.ok(selects(webhookService.selector));
  assert.deepEqual(webhookService.ports.map((p) => [p.port, p.targetPort]), [[443, "webhook"]]);
  const metricsService = only(docs, "Service", "quay-bridge-metrics").spec as {
    selector: Record<string, string>;
    ports: { targetPort: string }[];
  };
  assert.ok(selects(metricsService.selector));
  assert.equal(metricsService.ports[0]?.targetPort, "metrics");
});

function checkWebhook(webhook: Webhook): void {
  assert.deepEqual(webhook.rules, [{
    apiGroups: ["build.openshift.io"],
    apiVersions: ["v1"],
    operations: ["CREATE"],
    resources: ["builds"],
    scope: "Namespaced",
  }]);
  assert.deepEqual(webhook.admissionReviewVersions, ["v1", "v1beta1"]);
  assert.ok(["None", "NoneOnDryRun"].includes(webhook.sideEffects));
  assert.ok(webhook.timeoutSeconds <= 10);
  assert.ok(
    DEFAULTS.admissionBudgetMs < webhook.timeoutSeconds * 1000,
    "admission budget within the timeout",
  );
  assert.equal(webhook.failurePolicy, "Ignore");
  assert.deepEqual(webhook.clientConfig.service, {
    namespace: "quay-bridge",
    name: DEFAULTS.webhookServiceName,
    path: DEFAULTS.webhookPath,
    port: 443,
  });
  const byName = webhook.namespaceSelector?.matchExpressions?.find((e) =>
    e.key === "kubernetes.io/metadata.name"
  );
  assert.equal(byName?.operator, "NotIn");
  for (const ns of ["quay-bridge", "default", "kube-system", "kube-public", "openshift"]) {
    assert.ok(byName?.values?.includes(ns), `${ns} is not excluded`);
  }
  assert.ok(
    webhook.namespaceSelector?.matchExpressions?.some((e) =>
      e.key === "openshift.io/run-level" && e.operator === "DoesNotExist"
    ),
  );
}

Deno.test("the MutatingWebhookConfiguration: Build CREATE only, narrow, Ignore, named as config.ts expects", async () => {
  for (const variant of ["service-ca", "cert-manager", "self-managed"]) {
    const docs = await kustomizeDocs(`deploy/webhook/${variant}`);
    const mwc = only(docs, "MutatingWebhookConfiguration");
    assert.equal(mwc.metadata?.name, DEFAULTS.webhookConfigName);
    const webhooks = (mwc as unknown as { webhooks: Webhook[] }).webhooks;
    assert.equal(webhooks.length, 1);
    checkWebhook(webhooks[0] as Webhook);
  }
  const [manual] = await readYaml("deploy/webhook/manual/mutatingwebhookconfiguration.yaml") as [Doc];
  const hooks = (manual as unknown as { webhooks: Webhook[] }).webhooks;
  assert.equal(hooks[0]?.clientConfig.caBundle, "${CA_BUNDLE}");
  // Apart from the placeholder, the manual file is the shared one.
  const [shared] = await readYaml("deploy/webhook/mwc/mutatingwebhookconfiguration.yaml") as [Doc];
  delete hooks[0]?.clientConfig.caBundle;
  assert.deepEqual(manual, shared);
});

Deno.test("each webhook variant wires its certificates", async () => {
  const sc = await kustomizeDocs("deploy/webhook/service-ca");
  assert.equal(
    only(sc, "Service", "quay-bridge-webhook").metadata?.annotations
      ?.["service.beta.openshift.io/serving-cert-secret-name"],
    "quay-bridge-webhook-tls",
  );
  assert.equal(
    only(sc, "MutatingWebhookConfiguration").metadata?.annotations
      ?.["service.beta.openshift.io/inject-cabundle"],
    "true",
  );

  const cm = await kustomizeDocs("deploy/webhook/cert-manager");
  const certificate = only(cm, "Certificate", "quay-bridge-webhook");
  const certSpec = certificate.spec as {
    secretName: string;
    dnsNames: string[];
    issuerRef: { name: string };
  };
  assert.equal(certSpec.secretName, "quay-bridge-webhook-tls");
  assert.ok(certSpec.dnsNames.includes("quay-bridge-webhook.quay-bridge.svc"));
  only(cm, "Issuer", certSpec.issuerRef.name);
  assert.equal(
    only(cm, "MutatingWebhookConfiguration").metadata?.annotations?.["cert-manager.io/inject-ca-from"],
    "quay-bridge/quay-bridge-webhook",
  );

  const sm = await kustomizeDocs("deploy/webhook/self-managed");
  const pod = podOf(only(sm, "Deployment"));
  const c = pod.containers[0] as Container;
  assert.deepEqual(c.args, ["run", "--webhook-mode=self-managed"]);
  assert.ok(!pod.volumes?.some((v) => v.secret), "self-managed mounts no certificate Secret");
  assert.ok(!c.env?.some((e) => e.name === "WEBHOOK_CERT_DIR"));
  assert.ok(c.volumeMounts?.some((m) => m.mountPath === "/tmp"));
  const args = parseConfig({ args: c.args ?? [], env: () => undefined });
  assert.equal(args.webhookMode, "self-managed");
  assert.equal(args.webhookServiceName, "quay-bridge-webhook");

  const manual = await kustomizeDocs("deploy/webhook/manual");
  assert.equal(manual.filter((d) => d.kind === "MutatingWebhookConfiguration").length, 0);
});

Deno.test("scripts/webhook-cert.sh makes a Secret and fills ${CA_BUNDLE} with the CA that signed it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-webhook-cert-" });
  try {
    const out = await new Deno.Command("bash", {
      args: [ROOT + "scripts/webhook-cert.sh", "--print", "--out", dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert.equal(out.code, 0, decoder.decode(out.stderr));
    const text = decoder.decode(out.stdout);
    assert.ok(!text.includes("${CA_BUNDLE}"));
    const docs = text.split(/^---$/m).map((t) => parse(t) as Doc);
    const secret = docs.find((d) => d.kind === "Secret") as Doc & {
      type: string;
      data: Record<string, string>;
    };
    assert.equal(secret.type, "kubernetes.io/tls");
    assert.equal(secret.metadata?.name, "quay-bridge-webhook-tls");
    const mwc = docs.find((d) => d.kind === "MutatingWebhookConfiguration") as unknown as {
      webhooks: Webhook[];
    };
    const ca = atob(mwc.webhooks[0]?.clientConfig.caBundle ?? "");
    assert.equal(ca, await Deno.readTextFile(`${dir}/ca.crt`));
    assert.equal(atob(secret.data["tls.crt"] ?? ""), await Deno.readTextFile(`${dir}/tls.crt`));
    const verify = await new Deno.Command("openssl", {
      args: ["verify", "-CAfile", `${dir}/ca.crt`, `${dir}/tls.crt`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(verify.code, 0, decoder.decode(verify.stderr));
    const san = await new Deno.Command("openssl", {
      args: ["x509", "-noout", "-ext", "subjectAltName", "-in", `${dir}/tls.crt`],
      stdout: "piped",
    }).output();
    assert.match(decoder.decode(san.stdout), /DNS:quay-bridge-webhook\.quay-bridge\.svc\b/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
