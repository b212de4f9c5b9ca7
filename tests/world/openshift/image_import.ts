/**
 * @module
 * `ImageStreamImport` as OpenShift's importer does it, synchronously: for each requested
 * `DockerImage`, pull the manifest with the namespace's pull secrets, report Success or Failure per
 * image, and with `spec.import: true` write the resolved tags into the ImageStream (spec tag, then a
 * status tag event `host/org/repo@digest`). In the world it answers the virtual create; on a real
 * apiserver, where ImageStreamImport is a stored CRD, the admission webhook of `import_webhook.ts`
 * answers the create, and a controller imports each stored object without a status (posted before
 * the webhook was registered) once and writes the outcome into its status.
 */
import type { KubeWorldHooks } from "../kube/hooks.ts";
import { conflict, KubeStatusError, notFound } from "../kube/status.ts";
import { pullManifest, RegistryClientError } from "../quay/registry_client.ts";
import { KeyedRunner, keyOf, runInformer, splitKey } from "./controller.ts";
import {
  credentialsForHost,
  dockerConfigSecrets,
  parseImageReference,
  readSecrets,
  type RegistryCredential,
  serviceAccountSecretNames,
} from "./credentials.ts";
import { type KubeClient, KubeError, type KubeObject, resourcePath } from "./kube_client.ts";

export const IMAGE_STREAMS = { group: "image.openshift.io", version: "v1", resource: "imagestreams" };
export const IMAGE_STREAM_IMPORTS = {
  group: "image.openshift.io",
  version: "v1",
  resource: "imagestreamimports",
};
const QUALIFIED_STREAMS = { resource: "imagestreams", group: "image.openshift.io" };

/** Options of {@linkcode importImages}. */
export interface ImportOptions {
  client: KubeClient;
  namespace: string;
  /** The ImageStreamImport as posted. */
  request: KubeObject;
  /** CA PEM trusted for registries. */
  registryCaPem?: string;
  /** Compute the answer without writing the ImageStream. */
  dryRun?: boolean;
  /** Refuse with 409 when `metadata.resourceVersion` names an older ImageStream. @default true */
  checkResourceVersion?: boolean;
  signal?: AbortSignal;
}

interface ImportSpecImage {
  from?: { kind?: string; name?: string };
  to?: { name?: string };
  importPolicy?: Record<string, unknown>;
  referencePolicy?: { type?: string };
}

interface Resolved {
  spec: ImportSpecImage;
  tag: string;
  digest: string;
  reference: string;
}

/** The pull secrets of a namespace: the `default` SA's imagePullSecrets first, then every docker config Secret. */
export async function namespacePullSecrets(
  client: KubeClient,
  namespace: string,
  signal?: AbortSignal,
): Promise<KubeObject[]> {
  const linked = await readSecrets(
    client,
    namespace,
    await serviceAccountSecretNames(client, namespace, "default", "imagePullSecrets", signal),
    signal,
  );
  const all = await dockerConfigSecrets(client, namespace, signal);
  return [...linked, ...all.filter((s) => !linked.some((l) => l.metadata.name === s.metadata.name))];
}

/** Pulls `spec` trying each credential (then none), as the importer does; returns the digest or the last error. */
export async function pullWithCredentials(
  spec: string,
  credentials: readonly RegistryCredential[],
  registryCaPem: string | undefined,
  signal?: AbortSignal,
): Promise<{ ok: true; digest: string; created?: string } | { ok: false; error: Error }> {
  const image = parseImageReference(spec);
  const attempts: (RegistryCredential | undefined)[] = credentials.length > 0
    ? [...credentials]
    : [undefined];
  let last: Error = new Error("no attempt");
  for (const credential of attempts) {
    try {
      const pulled = await pullManifest({
        registryUrl: `https://${image.host}`,
        caPem: registryCaPem,
        repository: image.repository,
        reference: image.reference,
        username: credential?.username,
        password: credential?.password,
        signal,
      });
      return { ok: true, digest: pulled.digest, created: pulled.config?.created as string | undefined };
    } catch (error) {
      last = error as Error;
    }
  }
  return { ok: false, error: last };
}

function failure(code: number, reason: string, message: string): Record<string, unknown> {
  return { metadata: {}, status: "Failure", message, reason, code };
}

function pullFailure(spec: string, error: Error): Record<string, unknown> {
  const status = error instanceof RegistryClientError ? error.status : 0;
  if (status === 401 || status === 403) {
    return failure(
      401,
      "Unauthorized",
      `you may not have access to the container image "${spec}": ${error.message}`,
    );
  }
  if (status === 404) return failure(404, "NotFound", `image "${spec}" not found: ${error.message}`);
  return failure(500, "InternalError", `Internal error occurred: ${error.message}`);
}

/** Applies successful imports to the ImageStream: spec tags, then status tag events. */
async function writeStream(
  options: ImportOptions,
  resolved: readonly Resolved[],
  requestedVersion: string | undefined,
): Promise<KubeObject> {
  const { client, namespace, signal } = options;
  const name = options.request.metadata.name;
  const path = resourcePath(IMAGE_STREAMS, namespace, name);
  for (let attempt = 0;; attempt++) {
    let stream = await client.get(path, signal);
    try {
      if (!stream) {
        stream = await client.create(resourcePath(IMAGE_STREAMS, namespace), {
          apiVersion: "image.openshift.io/v1",
          kind: "ImageStream",
          metadata: { name, namespace },
          spec: { lookupPolicy: { local: false } },
        }, signal);
      }
      if (requestedVersion && attempt === 0) stream.metadata.resourceVersion = requestedVersion;
      const generation = Number(stream.metadata.generation ?? 0) + 1;
      const specTags = [...(stream.spec?.tags ?? [])] as Record<string, unknown>[];
      for (const r of resolved) {
        const entry = {
          name: r.tag,
          annotations: null,
          from: { kind: "DockerImage", name: r.spec.from?.name },
          generation,
          importPolicy: r.spec.importPolicy ?? {},
          referencePolicy: { type: r.spec.referencePolicy?.type ?? "Source" },
        };
        const at = specTags.findIndex((t) => t.name === r.tag);
        if (at >= 0) specTags[at] = entry;
        else specTags.push(entry);
      }
      const updated = await client.replace(
        path,
        { ...stream, spec: { ...stream.spec, tags: specTags } },
        signal,
      );
      const now = new Date().toISOString();
      const statusTags = [...(updated.status?.tags ?? [])] as {
        tag: string;
        items?: Record<string, unknown>[];
      }[];
      for (const r of resolved) {
        const item = {
          created: now,
          dockerImageReference: r.reference,
          image: r.digest,
          generation: updated.metadata.generation ?? generation,
        };
        const at = statusTags.findIndex((t) => t.tag === r.tag);
        const previous = at >= 0 ? (statusTags[at]?.items ?? []).filter((i) => i.image !== r.digest) : [];
        const tag = { tag: r.tag, items: [item, ...previous] };
        if (at >= 0) statusTags[at] = tag;
        else statusTags.push(tag);
      }
      return await client.replaceStatus(
        path,
        { ...updated, status: { ...updated.status, tags: statusTags } },
        signal,
      );
    } catch (error) {
      const isConflict = error instanceof KubeError && error.status === 409;
      if (isConflict && requestedVersion) throw conflict(QUALIFIED_STREAMS, name);
      if (!isConflict || attempt >= 10) throw error;
    }
  }
}

/** Imports the images an ImageStreamImport asks for and returns it with its status filled in. */
export async function importImages(options: ImportOptions): Promise<KubeObject> {
  const { client, namespace, request, signal } = options;
  const name = request.metadata.name;
  const requestedVersion = (options.checkResourceVersion ?? true)
    ? request.metadata.resourceVersion || undefined
    : undefined;
  if (requestedVersion) {
    const stream = await client.get(resourcePath(IMAGE_STREAMS, namespace, name), signal);
    if (!stream) throw notFound(QUALIFIED_STREAMS, name);
    if (stream.metadata.resourceVersion !== requestedVersion) {
      throw conflict(
        QUALIFIED_STREAMS,
        name,
        `the image stream was updated from "${requestedVersion}" to "${stream.metadata.resourceVersion}"`,
      );
    }
  }
  const secrets = await namespacePullSecrets(client, namespace, signal);
  const images: Record<string, unknown>[] = [];
  const resolved: Resolved[] = [];
  for (const spec of (request.spec?.images ?? []) as ImportSpecImage[]) {
    const from = spec.from?.name ?? "";
    if (spec.from?.kind !== "DockerImage" || !from) {
      images.push({
        status: failure(422, "Invalid", `only DockerImage is supported, got ${spec.from?.kind}`),
      });
      continue;
    }
    let image: ReturnType<typeof parseImageReference>;
    try {
      image = parseImageReference(from);
    } catch (error) {
      images.push({ status: failure(422, "Invalid", (error as Error).message) });
      continue;
    }
    const credentials = credentialsForHost(secrets, image.host);
    const pulled = await pullWithCredentials(from, credentials, options.registryCaPem, signal);
    const tag = spec.to?.name ?? (image.reference.startsWith("sha256:") ? "latest" : image.reference);
    if (!pulled.ok) {
      images.push({ tag, status: pullFailure(from, pulled.error) });
      continue;
    }
    const reference = `${image.host}/${image.repository}@${pulled.digest}`;
    resolved.push({ spec, tag, digest: pulled.digest, reference });
    images.push({
      tag,
      status: { metadata: {}, status: "Success", code: 200 },
      image: {
        metadata: { name: pulled.digest },
        dockerImageReference: reference,
        dockerImageMetadata: { Created: pulled.created },
      },
    });
  }
  const status: Record<string, unknown> = { images };
  if (request.spec?.import && !options.dryRun && resolved.length > 0) {
    status.import = await writeStream(options, resolved, requestedVersion);
  }
  return {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStreamImport",
    metadata: { name, namespace, creationTimestamp: new Date().toISOString() },
    spec: request.spec ?? {},
    status,
  };
}

/** Serves `imagestreamimports` in the world; returns the function that unregisters it. */
export function registerImportHook(
  hooks: KubeWorldHooks,
  client: KubeClient,
  registryCaPem: string | undefined,
): () => void {
  return hooks.onVirtualCreate(
    { group: "image.openshift.io", resource: "imagestreamimports" },
    async (req) => {
      try {
        return await importImages({
          client,
          namespace: req.namespace,
          request: req.body as KubeObject,
          registryCaPem,
          dryRun: req.dryRun,
        });
      } catch (error) {
        if (error instanceof KubeError && error.status > 0) {
          throw new KubeStatusError(error.status, error.reason || "InternalError", error.serverMessage);
        }
        throw error;
      }
    },
  );
}

/** On a real apiserver: imports each stored ImageStreamImport without a status, once, and records the outcome. */
export function startImportController(options: {
  client: KubeClient;
  registryCaPem?: string;
}): () => Promise<void> {
  const { client } = options;
  const abort = new AbortController();
  const signal = abort.signal;

  async function reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const path = resourcePath(IMAGE_STREAM_IMPORTS, namespace, name);
    const stored = await client.get(path, signal);
    if (!stored || stored.status?.images) return;
    // The stored object's resourceVersion is its own, not the ImageStream's: no staleness check.
    const answer = await importImages({
      client,
      namespace,
      request: stored,
      registryCaPem: options.registryCaPem,
      checkResourceVersion: false,
      signal,
    }).catch((error) => ({
      status: { images: [], message: (error as Error).message },
    }));
    await client.replaceStatus(path, { ...stored, status: answer.status }, signal);
  }

  const runner = new KeyedRunner(reconcile, signal);
  const informer = runInformer({
    client,
    path: resourcePath(IMAGE_STREAM_IMPORTS),
    onObject: (isi) => {
      if (!isi.status?.images) runner.enqueue(keyOf(isi));
    },
    signal,
  });
  return async () => {
    abort.abort();
    await informer;
    await runner.idle();
  };
}
