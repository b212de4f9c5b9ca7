/**
 * @module
 * `quay-bridge check`: a read-only preflight against a real cluster and Quay. It names each problem:
 * the Kubernetes API and the OpenShift APIs, the CRDs, the operator's RBAC (asked with
 * SelfSubjectAccessReviews, so it checks the identity it runs as), every QuayIntegration (spec,
 * credentials Secret, Quay reachable, token valid, each OAuth scope the bridge needs) and the
 * webhook configuration. Scopes are probed with requests that cannot change anything (an unknown
 * organization or repository, an invalid body): Quay checks the token's scope before anything else,
 * so an `insufficient_scope` answer names a missing scope and any other answer proves it present.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { parseIntegration, type QuayIntegrationObject } from "../integration_spec.ts";
import { KubeClient, listAll, loadKubeConnection } from "../kube/client.ts";
import {
  CRDS,
  LEGACY_QUAY_INTEGRATIONS,
  MUTATING_WEBHOOKS,
  QUAY_INTEGRATIONS,
  SECRETS,
  SELF_SUBJECT_ACCESS_REVIEWS,
} from "../kube/resources.ts";
import {
  configureProxy,
  createFetchTransport,
  createInsecureTransport,
  currentProxy,
  type HttpTransport,
} from "../http/transport.ts";
import { VERSION } from "../version.ts";
import { CHECKED_CRDS, REQUIRED_PERMISSIONS } from "../permissions.ts";

/** One preflight finding. */
export interface Finding {
  readonly check: string;
  readonly ok: boolean;
  /** `warn` findings do not fail the command. */
  readonly severity: "error" | "warn";
  readonly detail: string;
}

/** Options for {@linkcode runCheck}. */
export interface CheckOptions {
  config: Config;
  write: (text: string) => void;
}

/** Scopes the bridge needs, with a request that proves each without side effects. */
const SCOPE_PROBES: readonly {
  scope: string;
  method: string;
  path: (probe: string) => string;
  body?: unknown;
  optional?: boolean;
}[] = [
  { scope: "user:read", method: "GET", path: () => "/api/v1/user/" },
  { scope: "org:admin", method: "GET", path: (p) => `/api/v1/organization/${p}/robots` },
  { scope: "repo:read", method: "GET", path: (p) => `/api/v1/repository?namespace=${p}` },
  { scope: "repo:create", method: "POST", path: () => "/api/v1/repository", body: {} },
  // Quay answers a repository DELETE in a missing organization with an HTML 500; listing the user
  // permissions of a missing repository is gated by the same repo:admin check and answers 200.
  { scope: "repo:admin", method: "GET", path: (p) => `/api/v1/repository/${p}/${p}/permissions/user/` },
  { scope: "user:admin", method: "POST", path: () => "/api/v1/organization/", body: {} },
  { scope: "super:user", method: "GET", path: () => "/api/v1/superuser/users/", optional: true },
];

/** Runs every check; exit code 0 when no error-severity check failed. */
export async function runCheck(options: CheckOptions): Promise<number> {
  const findings = await collectFindings(options.config);
  if (options.config.output === "json") {
    options.write(JSON.stringify({ version: VERSION, findings }, null, 2) + "\n");
  } else {
    for (const f of findings) {
      const mark = f.ok ? "✓" : f.severity === "warn" ? "!" : "✗";
      options.write(`${mark} ${f.check}${f.detail ? ` — ${f.detail}` : ""}\n`);
    }
    const failed = findings.filter((f) => !f.ok && f.severity === "error").length;
    options.write(failed === 0 ? "\nAll checks passed.\n" : `\n${failed} check(s) failed.\n`);
  }
  return findings.some((f) => !f.ok && f.severity === "error") ? 1 : 0;
}

/** Collects findings (exported for tests). */
export async function collectFindings(config: Config): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (check: string, ok: boolean, detail = "", severity: Finding["severity"] = "error") =>
    findings.push({ check, ok, detail, severity });
  configureProxy(config.proxy);
  let kube: KubeClient;
  try {
    kube = new KubeClient(
      await loadKubeConnection({
        kubeconfig: config.kubeconfig,
        context: config.context,
        environment: config.kubeEnvironment,
      }),
    );
  } catch (error) {
    add("Kubernetes configuration", false, messageOf(error));
    return findings;
  }
  add(`Kubernetes API ${kube.connection.server} connection`, true, proxyInUse(kube.connection.server));
  try {
    const version = await kube.raw("GET", "/version") as { gitVersion?: string } | undefined;
    add("Kubernetes API reachable", version !== undefined, version?.gitVersion ?? "no /version");
  } catch (error) {
    add("Kubernetes API reachable", false, messageOf(error));
    kube.close();
    return findings;
  }
  try {
    const groups = await kube.raw("GET", "/apis") as { groups?: { name: string }[] } | undefined;
    const names = new Set((groups?.groups ?? []).map((g) => g.name));
    for (const group of ["image.openshift.io", "build.openshift.io"]) {
      add(
        `API group ${group} served`,
        names.has(group),
        names.has(group) ? "" : "ImageStreams/Builds unavailable: is this OpenShift?",
        "warn",
      );
    }
    for (const crd of CHECKED_CRDS) {
      const legacy = crd.endsWith("redhatcop.redhat.io");
      const found = await kube.get(CRDS, crd).catch(() => undefined);
      add(`CRD ${crd}`, found !== undefined, found ? "" : "apply deploy/crds", legacy ? "warn" : "error");
    }
    for (const p of REQUIRED_PERMISSIONS) {
      const review = await kube.create(SELF_SUBJECT_ACCESS_REVIEWS, {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        metadata: {},
        spec: {
          resourceAttributes: {
            group: p.group,
            resource: p.resource,
            verb: p.verb,
            ...(p.subresource ? { subresource: p.subresource } : {}),
            ...(p.name ? { name: p.name } : {}),
          },
        },
      }) as unknown as { status?: { allowed?: boolean; reason?: string } };
      const what = `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ""}${
        p.group ? `.${p.group}` : ""
      }`;
      add(
        `RBAC: ${what}`,
        review.status?.allowed === true,
        review.status?.allowed ? "" : "missing from the ClusterRole (deploy/rbac)",
      );
    }
    const webhooks = await listAll(kube, MUTATING_WEBHOOKS);
    const ours = webhooks.items.filter((w) =>
      ((w.webhooks ?? []) as { rules?: { resources?: string[] }[] }[]).some((h) =>
        (h.rules ?? []).some((r) => (r.resources ?? []).includes("builds"))
      )
    );
    if (ours.length === 0) {
      add(
        "MutatingWebhookConfiguration for builds",
        false,
        "none found: builds will push to the internal registry",
        "warn",
      );
    } else {
      for (const w of ours) {
        const hooks = (w.webhooks ?? []) as { name: string; clientConfig?: { caBundle?: string } }[];
        const missingCa = hooks.filter((h) => !h.clientConfig?.caBundle).map((h) => h.name);
        add(
          `MutatingWebhookConfiguration ${w.metadata.name}`,
          missingCa.length === 0,
          missingCa.length === 0
            ? ""
            : `no caBundle on ${
              missingCa.join(", ")
            } (service CA, cert-manager or self-managed mode fills it)`,
          "warn",
        );
      }
    }
    const integrations: QuayIntegrationObject[] = [];
    for (const type of [QUAY_INTEGRATIONS, LEGACY_QUAY_INTEGRATIONS]) {
      try {
        integrations.push(...(await listAll(kube, type)).items as QuayIntegrationObject[]);
      } catch {
        // A missing CRD was reported above.
      }
    }
    add(
      "QuayIntegration present",
      integrations.length > 0,
      integrations.length > 0 ? `${integrations.length}` : "create one (deploy/samples)",
    );
    for (const object of integrations) await checkIntegration(kube, config, object, add);
  } catch (error) {
    add("Kubernetes API", false, messageOf(error));
  } finally {
    kube.close();
  }
  return findings;
}

/** How requests to `url` go: through which proxy (never its credentials), or directly and why. */
export function proxyInUse(url: string): string {
  const resolver = currentProxy();
  const proxy = resolver.proxyFor(url);
  if (proxy) return `through the proxy ${proxy.url}`;
  if (!resolver.configured) return "direct (no HTTPS_PROXY/HTTP_PROXY set)";
  return "direct (NO_PROXY matches, or localhost)";
}

async function checkIntegration(
  kube: KubeClient,
  config: Config,
  object: QuayIntegrationObject,
  add: (check: string, ok: boolean, detail?: string, severity?: Finding["severity"]) => void,
): Promise<void> {
  const label = `QuayIntegration ${object.metadata?.name} (${object.apiVersion})`;
  const parsed = parseIntegration(object, {
    operatorNamespace: config.namespace,
    credentialsNamespaces: config.credentialsNamespaces,
  });
  if (!parsed.ok) {
    for (const p of parsed.problems) add(`${label}: ${p.reason}`, false, p.message);
    return;
  }
  const i = parsed.integration;
  add(`${label}: spec`, true);
  const secret = await kube.get(SECRETS, i.credentialsSecret.name, {
    namespace: i.credentialsSecret.namespace,
  }).catch(
    (e) => ({ error: messageOf(e) }),
  );
  const ref = `${i.credentialsSecret.namespace}/${i.credentialsSecret.name}`;
  if (!secret || "error" in secret) {
    add(
      `${label}: credentials Secret ${ref}`,
      false,
      secret && "error" in secret ? String(secret.error) : "not found",
    );
    return;
  }
  const raw = ((secret as { data?: Record<string, string> }).data ?? {})[i.credentialsSecret.key];
  const token = raw ? new TextDecoder().decode(Uint8Array.fromBase64(raw)).trim() : "";
  add(
    `${label}: credentials Secret ${ref} key "${i.credentialsSecret.key}"`,
    token !== "",
    token ? "" : "missing or empty",
  );
  if (!token) return;
  add(`${label}: connection to ${i.quayUrl}`, true, proxyInUse(i.quayUrl));
  const transport: HttpTransport = i.insecureRegistry
    ? createInsecureTransport()
    : createFetchTransport({ caCerts: i.caBundle ? [i.caBundle] : [] });
  try {
    for (const f of await checkQuayToken(label, i.quayUrl, token, transport)) {
      add(f.check, f.ok, f.detail, f.severity);
    }
  } finally {
    transport.close();
  }
}

/**
 * Quay reachable, `token` valid and each scope of {@linkcode SCOPE_PROBES} granted, probed with
 * requests that change nothing. Stops at the first unreachable or rejected answer.
 */
export async function checkQuayToken(
  label: string,
  quayUrl: string,
  token: string,
  transport: HttpTransport,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (check: string, ok: boolean, detail = "", severity: Finding["severity"] = "error") =>
    findings.push({ check, ok, severity, detail });
  const probe = `quay-bridge-check-${crypto.randomUUID().slice(0, 8)}`;
  for (const p of SCOPE_PROBES) {
    let status = 0;
    let errorType = "";
    let detail = "";
    try {
      const r = await transport.send({
        method: p.method,
        url: quayUrl + p.path(probe),
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: "application/json",
          ...(p.body ? { "Content-Type": "application/json" } : {}),
        },
        body: p.body ? JSON.stringify(p.body) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
      status = r.status;
      try {
        const body = JSON.parse(r.text) as { error_type?: string; detail?: string };
        errorType = body.error_type ?? "";
        detail = body.detail ?? "";
      } catch {
        detail = r.text.slice(0, 80);
      }
    } catch (error) {
      add(`${label}: Quay reachable at ${quayUrl}`, false, messageOf(error));
      return findings;
    }
    if (p.scope === "user:read") {
      add(`${label}: Quay reachable at ${quayUrl}`, true);
      if (status === 401) {
        add(`${label}: token valid`, false, "Quay rejected the token (401); create a new OAuth token");
        return findings;
      }
      add(
        `${label}: token valid`,
        status === 200,
        status === 200 ? "" : `GET /api/v1/user/ answered ${status} ${detail}`,
      );
    }
    const missing = status === 403 && errorType === "insufficient_scope";
    add(
      `${label}: token scope ${p.scope}`,
      !missing && status !== 401 && status < 500,
      missing ? `grant "${p.scope}" to the OAuth token` : status >= 500 ? `Quay answered ${status}` : "",
      p.optional ? "warn" : "error",
    );
  }
  return findings;
}
