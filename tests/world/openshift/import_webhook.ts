/**
 * @module
 * On a real kube-apiserver, ImageStreamImport is a stored CRD, while in OpenShift it is a
 * create-only virtual resource: the POST imports synchronously and answers with the status filled
 * in, `metadata.resourceVersion` names the ImageStream the import expects (409 when it is stale),
 * and the same name can be posted again and again. A plain CRD refuses a create that carries a
 * resourceVersion and a second create of the same name. This mutating admission webhook, served
 * over TLS on 127.0.0.1 and registered by URL, makes the CRD answer like OpenShift: it runs
 * {@linkcode importImages} with the resourceVersion check, denies with its status code on error,
 * and patches the object to store: no resourceVersion, the status of the import. A previous object
 * of the same name is deleted first.
 */
import { createCertificateAuthority, issueServingCertificate } from "../../../src/certs/pki.ts";
import { KubeStatusError } from "../kube/status.ts";
import { IMAGE_STREAM_IMPORTS, importImages } from "./image_import.ts";
import { type KubeClient, KubeError, type KubeObject, resourcePath } from "./kube_client.ts";

/** Name of the MutatingWebhookConfiguration the webhook registers. */
export const IMPORT_WEBHOOK_CONFIG = "test-world-openshift-imagestreamimports";

const CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

interface Review {
  apiVersion: string;
  request: {
    uid: string;
    namespace: string;
    operation: string;
    dryRun?: boolean;
    object: KubeObject;
  };
}

/** A one-chunk stream body: Deno.serve stalls ~40 ms on string bodies over TLS with HTTP/1.1. */
function jsonBody(value: unknown): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

function denial(error: unknown): { code: number; reason: string; message: string } {
  if (error instanceof KubeStatusError) {
    return { code: error.code, reason: error.reason, message: error.message };
  }
  if (error instanceof KubeError && error.status > 0) {
    return { code: error.status, reason: error.reason || "InternalError", message: error.serverMessage };
  }
  return {
    code: 500,
    reason: "InternalError",
    message: error instanceof Error ? error.message : String(error),
  };
}

/** A registered import webhook. */
export interface ImportWebhook {
  /** Resolves once the MutatingWebhookConfiguration exists (the apiserver picks it up shortly after). */
  readonly ready: Promise<void>;
  /** Deletes the configuration and stops serving. */
  stop(): Promise<void>;
}

/** Serves and registers the ImageStreamImport webhook. */
export function startImportWebhook(options: { client: KubeClient; registryCaPem?: string }): ImportWebhook {
  const { client } = options;
  const abort = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;

  async function review(body: Review): Promise<Record<string, unknown>> {
    const { request } = body;
    const object = request.object;
    const namespace = request.namespace;
    try {
      const answer = await importImages({
        client: options.client,
        namespace,
        request: { ...object, metadata: { ...object.metadata, namespace } },
        registryCaPem: options.registryCaPem,
        dryRun: request.dryRun === true,
        signal: abort.signal,
      });
      const patch: unknown[] = [];
      if (object.metadata.resourceVersion !== undefined) {
        patch.push({ op: "remove", path: "/metadata/resourceVersion" });
      }
      patch.push({ op: "add", path: "/status", value: answer.status });
      if (!request.dryRun && object.metadata.name) {
        // OpenShift stores nothing: the name can be posted again.
        const path = resourcePath(IMAGE_STREAM_IMPORTS, namespace, object.metadata.name);
        await client.request("DELETE", path, { signal: abort.signal }).catch((error) => {
          if (!(error instanceof KubeError && error.status === 404)) throw error;
        });
      }
      return { uid: request.uid, allowed: true, patchType: "JSONPatch", patch: btoa(JSON.stringify(patch)) };
    } catch (error) {
      return { uid: request.uid, allowed: false, status: denial(error) };
    }
  }

  const ready = (async () => {
    const ca = await createCertificateAuthority({ commonName: "test-world-openshift-webhook-ca" });
    const serving = await issueServingCertificate(ca, {
      commonName: "127.0.0.1",
      ipAddresses: ["127.0.0.1"],
    });
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: serving.certPem,
      key: serving.keyPem,
      signal: abort.signal,
      onListen: () => {},
    }, async (request) => {
      const body = await request.json() as Review;
      return new Response(
        jsonBody({ apiVersion: body.apiVersion, kind: "AdmissionReview", response: await review(body) }),
        { headers: { "Content-Type": "application/json" } },
      );
    });
    const configuration = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: IMPORT_WEBHOOK_CONFIG },
      webhooks: [{
        name: "imagestreamimports.test-world.openshift.io",
        admissionReviewVersions: ["v1"],
        sideEffects: "NoneOnDryRun",
        failurePolicy: "Fail",
        timeoutSeconds: 30,
        clientConfig: {
          url: `https://127.0.0.1:${server.addr.port}/imagestreamimports`,
          caBundle: btoa(ca.certPem),
        },
        rules: [{
          apiGroups: ["image.openshift.io"],
          apiVersions: ["v1"],
          operations: ["CREATE"],
          resources: ["imagestreamimports"],
          scope: "Namespaced",
        }],
      }],
    };
    const existing = await client.get(`${CONFIGS}/${IMPORT_WEBHOOK_CONFIG}`, abort.signal);
    if (existing) {
      await client.replace(`${CONFIGS}/${IMPORT_WEBHOOK_CONFIG}`, {
        ...configuration,
        metadata: { ...configuration.metadata, resourceVersion: existing.metadata.resourceVersion },
      }, abort.signal);
    } else {
      await client.create(CONFIGS, configuration, abort.signal);
    }
  })();
  ready.catch(() => {}); // reported through `ready` to whoever awaits it

  return {
    ready,
    async stop() {
      await ready.catch(() => {});
      await client.request("DELETE", `${CONFIGS}/${IMPORT_WEBHOOK_CONFIG}`).catch(() => {});
      abort.abort();
      await server?.finished;
    },
  };
}
