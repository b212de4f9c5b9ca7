/**
 * @module
 * Imports tags pushed to Quay into their ImageStreams. A key is `<namespace>/<imagestream>:<tag>`;
 * the keyed work queue (`controller/queue.ts`) runs one import per key at a time and folds every
 * delivery that arrives meanwhile into one more run, so a burst of pushes to a tag causes one
 * import in flight and at most one after it (which picks up the latest push). Each run reads the
 * ImageStream fresh, imports only a tag it tracks (in `spec.tags` or `status.tags`) unless the
 * integration imports all tags (`notifications.importAllTags`), and uses the same ImageStreamImport as the import after a Build:
 * from the Quay pull spec, reference policy Source, insecure and scheduled from the integration.
 * Re-importing an unchanged image changes nothing, so duplicate deliveries are harmless.
 */
import { KubeApiError } from "../errors.ts";
import type { Integration } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import { IMAGE_STREAM_IMPORTS, IMAGE_STREAMS, type KubeObject } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { organizationName } from "../names.ts";
import type { EventSink } from "../controller/events.ts";
import { type Action, AWAIT_CHANGE } from "../controller/queue.ts";

/** A queued import. */
export interface TagKey {
  readonly namespace: string;
  readonly imageStream: string;
  readonly tag: string;
}

/** `<namespace>/<imagestream>:<tag>`. */
export function tagKey(k: TagKey): string {
  return `${k.namespace}/${k.imageStream}:${k.tag}`;
}

/** Inverse of {@linkcode tagKey}. */
export function parseTagKey(key: string): TagKey | undefined {
  const m = /^([^/:]+)\/([^/:]+):([^/:]+)$/.exec(key);
  return m ? { namespace: m[1] as string, imageStream: m[2] as string, tag: m[3] as string } : undefined;
}

/** What an import run reads and writes through. */
export interface ImportContext {
  readonly kube: KubeClient;
  /** The integration managing `namespace`, if any (the receiver and the audit log check the rest). */
  readonly integrationFor: (namespace: string) => Integration | undefined;
  readonly events: EventSink;
  readonly logger: Logger;
}

/** Tag names an ImageStream tracks: its spec tags and the tags it has images for. */
export function trackedTags(imageStream: KubeObject): Set<string> {
  const spec = (imageStream.spec ?? {}) as { tags?: { name?: unknown }[] };
  const status = (imageStream.status ?? {}) as { tags?: { tag?: unknown }[] };
  const out = new Set<string>();
  for (const t of spec.tags ?? []) if (typeof t?.name === "string") out.add(t.name);
  for (const t of status.tags ?? []) if (typeof t?.tag === "string") out.add(t.tag);
  return out;
}

/** The ImageStreamImport that imports `from` into `imageStream:tag`. */
export function imageStreamImport(
  k: TagKey,
  from: string,
  policy: { insecure: boolean; scheduled: boolean },
  resourceVersion: string | undefined,
): KubeObject {
  return {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStreamImport",
    metadata: {
      name: k.imageStream,
      namespace: k.namespace,
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    spec: {
      import: true,
      images: [{
        from: { kind: "DockerImage", name: from },
        to: { name: k.tag },
        importPolicy: policy,
        referencePolicy: { type: "Source" },
      }],
    },
  };
}

function importFailure(result: KubeObject): string | undefined {
  const images =
    ((result.status ?? {}) as { images?: { status?: { status?: string; message?: string } }[] }).images;
  const status = images?.[0]?.status;
  if (status && status.status && status.status !== "Success") return status.message ?? status.status;
  return undefined;
}

/** Imports the tag under `key`; the queue's reconcile. */
export async function reconcileTagImport(ctx: ImportContext, key: string): Promise<Action> {
  const k = parseTagKey(key);
  if (!k) return AWAIT_CHANGE;
  const integration = ctx.integrationFor(k.namespace);
  if (!integration) return AWAIT_CHANGE;
  const importAll = integration.notifications?.importAllTags ?? false;
  const from =
    `${integration.registryHost}/${organizationName(integration.organizationPrefix, k.namespace)}/` +
    `${k.imageStream}:${k.tag}`;
  const target = {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStream",
    name: k.imageStream,
    namespace: k.namespace,
  };
  for (let attempt = 1;; attempt++) {
    const stream = await ctx.kube.get(IMAGE_STREAMS, k.imageStream, { namespace: k.namespace });
    if (!stream) return AWAIT_CHANGE;
    if (!importAll && !trackedTags(stream).has(k.tag)) {
      ctx.logger.debug("pushed tag not tracked by the ImageStream", { tag: key });
      return AWAIT_CHANGE;
    }
    try {
      const result = await ctx.kube.create(
        IMAGE_STREAM_IMPORTS,
        imageStreamImport(k, from, {
          insecure: integration.insecureRegistry,
          scheduled: integration.scheduledImageStreamImport,
        }, stream.metadata.resourceVersion),
      );
      const failure = importFailure(result);
      if (failure) {
        ctx.events.emit(
          { ...target, uid: stream.metadata.uid },
          "Warning",
          "ImportFailed",
          `Importing ${from} failed: ${failure}`,
        );
        // Retried with the queue's backoff (a Quay hiccup passes; a vanished image waits for the next push).
        throw new KubeApiError(`Import of ${from} into ${k.namespace}/${k.imageStream} failed: ${failure}`, {
          status: 503,
          statusReason: "ImportFailed",
        });
      }
      ctx.events.emit(
        { ...target, uid: stream.metadata.uid },
        "Normal",
        "ImageImported",
        `Imported ${from} into ${k.imageStream}:${k.tag} after a push to Quay`,
      );
      ctx.logger.info("image imported after push", { tag: key, image: from });
      return AWAIT_CHANGE;
    } catch (error) {
      // The ImageStream changed since it was read: read it again.
      if (error instanceof KubeApiError && error.status === 409 && attempt < 4) continue;
      throw error;
    }
  }
}
