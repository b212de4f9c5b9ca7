/**
 * @module
 * Shared material for the webhook tests: Build AdmissionReviews as kube-apiserver sends them, an
 * in-memory {@linkcode AdmissionPort} whose namespaces the test sets, and response decoding.
 */
import type { AdmissionPort, NamespaceTarget } from "../../src/webhook/mod.ts";

/** Options for {@linkcode buildReview}. */
export interface BuildReviewOptions {
  version?: "admission.k8s.io/v1" | "admission.k8s.io/v1beta1";
  uid?: string;
  operation?: string;
  namespace?: string;
  name?: string;
  strategy?: unknown;
  output?: unknown;
  annotations?: unknown;
  dryRun?: boolean;
  kind?: { group: string; version: string; kind: string };
}

/** A Build CREATE AdmissionReview with a Docker strategy and an ImageStreamTag output. */
export function buildReview(options: BuildReviewOptions = {}): Record<string, unknown> {
  const namespace = options.namespace ?? "team-a";
  const name = options.name ?? "app-1";
  const metadata: Record<string, unknown> = { name, namespace, labels: { buildconfig: "app" } };
  if (options.annotations !== undefined) metadata.annotations = options.annotations;
  const object = {
    kind: "Build",
    apiVersion: "build.openshift.io/v1",
    metadata,
    spec: {
      serviceAccount: "builder",
      source: { type: "Git", git: { uri: "https://example.com/app.git" } },
      strategy: options.strategy ?? { type: "Docker", dockerStrategy: {} },
      output: options.output ?? { to: { kind: "ImageStreamTag", name: "app:latest" } },
    },
  };
  const request: Record<string, unknown> = {
    uid: options.uid ?? "0b6e7a1c-4a52-4a8e-9d1b-6c2f1e0f7a11",
    kind: options.kind ?? { group: "build.openshift.io", version: "v1", kind: "Build" },
    resource: { group: "build.openshift.io", version: "v1", resource: "builds" },
    operation: options.operation ?? "CREATE",
    namespace,
    name,
    object,
    userInfo: { username: "system:serviceaccount:openshift-infra:build-config-change-controller" },
  };
  if (options.dryRun !== undefined) request.dryRun = options.dryRun;
  return { apiVersion: options.version ?? "admission.k8s.io/v1", kind: "AdmissionReview", request };
}

/** The ready target the fixtures use for managed namespaces. */
export function readyTarget(namespace: string): NamespaceTarget {
  return {
    state: "ready",
    registryHost: "quay.example.com",
    organization: `openshift_${namespace}`,
    pushSecretName: "builder-quay-openshift",
  };
}

/** An in-memory port: namespaces map to targets; `provision` runs `onProvision` and counts calls. */
export class MemoryPort implements AdmissionPort {
  readonly targets = new Map<string, NamespaceTarget>();
  provisionCalls = 0;
  readonly provisionSignals: AbortSignal[] = [];
  onProvision: (namespace: string, signal: AbortSignal) => Promise<NamespaceTarget> = (namespace) =>
    Promise.resolve(this.target(namespace));

  target(namespace: string): NamespaceTarget {
    return this.targets.get(namespace) ?? { state: "unmanaged" };
  }

  provision(namespace: string, signal: AbortSignal): Promise<NamespaceTarget> {
    this.provisionCalls++;
    this.provisionSignals.push(signal);
    return this.onProvision(namespace, signal);
  }
}

/** The `response` of an AdmissionReview answer, with the patch decoded. */
export interface DecodedResponse {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    status?: { code: number; reason: string; message: string };
    warnings?: string[];
  };
  patch: { op: string; path: string; value?: unknown }[] | undefined;
}

/** Decodes an AdmissionReview answer body. */
export function decodeReview(body: unknown): DecodedResponse {
  const review = body as DecodedResponse;
  const patch = review.response.patch === undefined
    ? undefined
    : JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(review.response.patch)));
  return { ...review, patch };
}

/** POSTs `body` to the app at `path` and returns status and parsed JSON. */
export async function post(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  body: unknown,
  path = "/admissionwebhook",
): Promise<{ status: number; json: unknown }> {
  const response = await app.request(path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return { status: response.status, json: await response.json() };
}
