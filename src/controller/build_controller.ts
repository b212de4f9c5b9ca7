/**
 * @module
 * Import after build: when a Build the webhook rewrote reaches `Complete`, import the pushed image
 * into the destination ImageStream tag with one ImageStreamImport (from the Quay pull spec, to the
 * tag, reference policy Source, insecure and scheduled from the QuayIntegration), then mark the
 * Build imported. Only completed, not yet imported Builds ever reach this reconcile (the cache
 * keeps rewritten Builds only), so a Failed or running Build imports nothing and a marked one is
 * never imported again (the predecessor imported on every Build event, so a Failed Build's stale
 * image could overwrite the tag).
 */
import { TransientError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Reflector } from "../kube/reflector.ts";
import { BUILDS, IMAGE_STREAM_IMPORTS, type KubeObject } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { annotationKey, IMPORTED_ANNOTATION } from "../names.ts";
import type { EventSink, EventTarget } from "./events.ts";
import type { IntegrationRegistry } from "./integration_registry.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "./queue.ts";
import type { BuildView, ImageStreamView, NamespaceView } from "./views.ts";

/** What the build reconcile reads and writes through. */
export interface BuildContext {
  readonly kube: KubeClient;
  readonly builds: Reflector<BuildView>;
  readonly imageStreams: Reflector<ImageStreamView>;
  readonly namespaces: Reflector<NamespaceView>;
  readonly integrations: IntegrationRegistry;
  readonly events: EventSink;
  readonly logger: Logger;
}

/** Parses `<namespace>/<imagestream>:<tag>`. */
export function parseDestination(
  value: string,
): { namespace: string; imageStream: string; tag: string } | undefined {
  const match = /^([^/:]+)\/([^/:]+):([^/:]+)$/.exec(value);
  if (!match) return undefined;
  return { namespace: match[1] as string, imageStream: match[2] as string, tag: match[3] as string };
}

function buildTarget(build: BuildView): EventTarget {
  return {
    apiVersion: "build.openshift.io/v1",
    kind: "Build",
    name: build.name,
    namespace: build.namespace,
    uid: build.uid,
  };
}

/** Reconciles the Build under `key` (`namespace/name`). */
export async function reconcileBuild(ctx: BuildContext, key: string): Promise<Action> {
  const build = ctx.builds.get(key);
  if (!build || build.phase !== "Complete" || build.imported) return AWAIT_CHANGE;
  const target = buildTarget(build);
  const destination = parseDestination(build.destination);
  if (!destination || build.outputKind !== "DockerImage" || !build.outputName) {
    ctx.events.emit(
      target,
      "Warning",
      "ProcessingError",
      `Cannot import: destination annotation "${build.destination}" must be <namespace>/<imagestream>:<tag> ` +
        `and the output a DockerImage`,
    );
    return AWAIT_CHANGE;
  }
  const isKey = `${destination.namespace}/${destination.imageStream}`;
  const namespace = ctx.namespaces.get(destination.namespace);
  const resolution = namespace ? ctx.integrations.resolve(namespace) : { kind: "unmanaged" as const };
  const integration = resolution.kind === "managed" ? resolution.integration : undefined;

  const resourceVersion = ctx.imageStreams.get(isKey)?.resourceVersion;
  if (resourceVersion === undefined) {
    ctx.events.emit(
      target,
      "Warning",
      "ImageStreamNotFound",
      `ImageStream ${isKey} not found; import retried`,
    );
    return requeueAfter(60_000);
  }
  // Guarded by the cached resourceVersion: if the ImageStream changed since, the API answers 409 (a
  // conflict), the pass ends and the queue runs it again promptly on the fresher cache.
  const result = await ctx.kube.create(IMAGE_STREAM_IMPORTS, {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStreamImport",
    metadata: { name: destination.imageStream, namespace: destination.namespace, resourceVersion },
    spec: {
      import: true,
      images: [{
        from: { kind: "DockerImage", name: build.outputName },
        to: { name: destination.tag },
        importPolicy: {
          insecure: integration?.insecureRegistry ?? false,
          scheduled: integration?.scheduledImageStreamImport ?? false,
        },
        referencePolicy: { type: "Source" },
      }],
    },
  });
  const failure = importFailure(result);
  if (failure) {
    ctx.events.emit(target, "Warning", "ImportFailed", `Importing ${build.outputName} failed: ${failure}`);
    // The image may not be readable yet (registry replication, a slow push): retried with backoff.
    throw new TransientError(`Import of ${build.outputName} into ${isKey} failed: ${failure}`, {
      reason: "ImportFailed",
    });
  }
  await ctx.kube.patch(BUILDS, build.name, {
    metadata: { annotations: { [annotationKey(IMPORTED_ANNOTATION)]: "true" } },
  }, {
    patchType: "merge",
    namespace: build.namespace,
  });
  ctx.events.emit(
    target,
    "Normal",
    "ImageImported",
    `Imported ${build.outputName} into ${isKey}:${destination.tag}`,
  );
  ctx.logger.info("image imported", {
    build: key,
    image: build.outputName,
    tag: `${isKey}:${destination.tag}`,
  });
  return AWAIT_CHANGE;
}

function importFailure(result: KubeObject): string | undefined {
  const images =
    ((result.status ?? {}) as { images?: { status?: { status?: string; message?: string } }[] }).images;
  const status = images?.[0]?.status;
  if (status && status.status && status.status !== "Success") return status.message ?? status.status;
  return undefined;
}
