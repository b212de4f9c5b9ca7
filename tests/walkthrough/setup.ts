/**
 * @module
 * What an admin installs before the operator runs, done over the API as `kubectl apply` would: the
 * CRDs from deploy/crds, the operator's namespace, the `quay-integration` token Secret and a
 * QuayIntegration. Shared by the integration tests, the demo and the e2e suite.
 */
import { parseAllDocuments } from "yaml";
import type { Api } from "./mod.ts";

/** A JSON client of one HTTPS server with a bearer token; `close()` frees its TLS client. */
export function jsonClient(base: string, token: string, caPem: string): Api & { close(): void } {
  const http = Deno.createHttpClient({ caCerts: [caPem] });
  const call = async (method: string, path: string, body?: unknown, contentType = "application/json") => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = contentType;
    const response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      client: http,
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed };
  };
  return {
    call,
    async ok(method, path, body, contentType) {
      const reply = await call(method, path, body, contentType);
      if (reply.status < 200 || reply.status > 299) {
        throw new Error(`${method} ${path} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      }
      return reply.body;
    },
    close: () => http.close(),
  };
}

/** Installs the CRDs from deploy/crds and waits until they are served. */
export async function installCrds(kube: Api): Promise<void> {
  const dir = new URL("../../deploy/crds/", import.meta.url);
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".yaml")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    for (const doc of parseAllDocuments(text)) {
      const crd = doc.toJS();
      if (!crd) continue;
      const reply = await kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
      if (reply.status !== 201 && reply.status !== 409) {
        throw new Error(`CRD ${entry.name}: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
    }
  }
  const deadline = Date.now() + 30_000;
  for (
    const path of [
      "/apis/quay.redhat.com/v1/quayintegrations",
      "/apis/redhatcop.redhat.io/v1alpha1/quayintegrations",
    ]
  ) {
    while ((await kube.call("GET", path)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`${path} is not served`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Options of {@linkcode installIntegration}. */
export interface IntegrationSetup {
  operatorNamespace: string;
  quayUrl: string;
  quayToken: string;
  quayCaPem: string;
  /** @default "quay" */
  name?: string;
  spec?: Record<string, unknown>;
}

/** Creates the operator namespace (if absent), the token Secret and the QuayIntegration. */
export async function installIntegration(kube: Api, setup: IntegrationSetup): Promise<void> {
  const ns = await kube.call("POST", "/api/v1/namespaces", { metadata: { name: setup.operatorNamespace } });
  if (ns.status !== 201 && ns.status !== 409) {
    throw new Error(`namespace: ${ns.status} ${JSON.stringify(ns.body)}`);
  }
  await kube.ok("POST", `/api/v1/namespaces/${setup.operatorNamespace}/secrets`, {
    metadata: { name: "quay-integration" },
    stringData: { token: setup.quayToken },
  });
  await kube.ok("POST", "/apis/quay.redhat.com/v1/quayintegrations", {
    apiVersion: "quay.redhat.com/v1",
    kind: "QuayIntegration",
    metadata: { name: setup.name ?? "quay" },
    spec: {
      clusterID: "openshift",
      credentialsSecret: { namespace: setup.operatorNamespace, name: "quay-integration", key: "token" },
      quayHostname: setup.quayUrl,
      caBundle: setup.quayCaPem,
      ...setup.spec,
    },
  });
}

/** The operator's ServiceAccount in deploy/rbac/rbac.yaml. */
export const OPERATOR_SERVICE_ACCOUNT = "quay-bridge-operator";

/**
 * Creates everything in deploy/rbac/rbac.yaml (ServiceAccount, ClusterRole and Role with their
 * bindings), so an operator running as that ServiceAccount has exactly the deploy/ permissions.
 * The operator namespace must exist.
 */
export async function installRbac(kube: Api): Promise<void> {
  const text = await Deno.readTextFile(new URL("../../deploy/rbac/rbac.yaml", import.meta.url));
  const plural: Record<string, string> = {
    ServiceAccount: "serviceaccounts",
    ClusterRole: "clusterroles",
    ClusterRoleBinding: "clusterrolebindings",
    Role: "roles",
    RoleBinding: "rolebindings",
  };
  for (const doc of parseAllDocuments(text)) {
    const object = doc.toJS();
    if (!object) continue;
    const resource = plural[object.kind];
    if (!resource) throw new Error(`unexpected ${object.kind} in deploy/rbac/rbac.yaml`);
    const base = object.apiVersion === "v1" ? "/api/v1" : `/apis/${object.apiVersion}`;
    const ns = object.metadata.namespace ? `/namespaces/${object.metadata.namespace}` : "";
    const reply = await kube.call("POST", `${base}${ns}/${resource}`, object);
    if (reply.status !== 201 && reply.status !== 409) {
      throw new Error(
        `${object.kind} ${object.metadata.name}: ${reply.status} ${JSON.stringify(reply.body)}`,
      );
    }
  }
}
