/**
 * @module
 * BuildConfig instantiation as OpenShift's build generator does it: bump `status.lastVersion`, then
 * create Build `<bc>-<n>` from the config's spec with the labels and annotations `oc` and the
 * operator rely on. The Build is created with a POST so mutating admission (the operator's webhook)
 * sees it, as on a real cluster. In the world it answers `POST .../buildconfigs/<name>/instantiate`;
 * on a real apiserver (no such subresource for a CRD) tests call {@linkcode instantiateBuildConfig}.
 */
import type { KubeWorldHooks } from "../kube/hooks.ts";
import { KubeStatusError } from "../kube/status.ts";
import { type KubeClient, KubeError, type KubeObject, resourcePath } from "./kube_client.ts";

export const BUILD_CONFIGS = { group: "build.openshift.io", version: "v1", resource: "buildconfigs" };
export const BUILDS = { group: "build.openshift.io", version: "v1", resource: "builds" };

/** BuildConfig spec fields a Build inherits (the rest — triggers, run policy, history limits — stay behind). */
const COPIED_SPEC_FIELDS = [
  "serviceAccount",
  "source",
  "revision",
  "strategy",
  "output",
  "resources",
  "postCommit",
  "completionDeadlineSeconds",
  "nodeSelector",
  "mountTrustedCA",
] as const;

/** Options of {@linkcode instantiateBuildConfig}. */
export interface InstantiateOptions {
  /** The BuildRequest's extra labels, annotations and trigger cause. */
  request?: KubeObject;
  signal?: AbortSignal;
}

/**
 * Creates the next Build of a BuildConfig and returns it. Throws {@linkcode KubeError} (404 when the
 * BuildConfig is missing, or the Build create's refusal, e.g. a webhook's denial).
 */
export async function instantiateBuildConfig(
  client: KubeClient,
  namespace: string,
  name: string,
  options: InstantiateOptions = {},
): Promise<KubeObject> {
  const path = resourcePath(BUILD_CONFIGS, namespace, name);
  // Take the version number first, with the BuildConfig's resourceVersion as the lock, so two
  // concurrent instantiations never create the same Build.
  let bc: KubeObject;
  let version: number;
  for (let attempt = 0;; attempt++) {
    const current = await client.get(path, options.signal);
    if (!current) {
      throw new KubeError(`buildconfigs.build.openshift.io "${name}" not found`, {
        status: 404,
        reason: "NotFound",
      });
    }
    version = Number(current.status?.lastVersion ?? 0) + 1;
    try {
      bc = await client.replaceStatus(path, {
        ...current,
        status: { ...current.status, lastVersion: version },
      });
      break;
    } catch (error) {
      if (!(error instanceof KubeError && error.status === 409) || attempt >= 20) throw error;
    }
  }
  const spec: Record<string, unknown> = {};
  for (const field of COPIED_SPEC_FIELDS) {
    if (bc.spec?.[field] !== undefined) spec[field] = structuredClone(bc.spec[field]);
  }
  spec.triggeredBy = options.request?.triggeredBy ?? [{ message: "Manually triggered" }];
  const buildName = `${name}-${version}`;
  const build = {
    apiVersion: "build.openshift.io/v1",
    kind: "Build",
    metadata: {
      name: buildName,
      namespace,
      labels: {
        ...bc.metadata.labels,
        ...options.request?.metadata?.labels,
        buildconfig: name,
        "openshift.io/build-config.name": name,
        "openshift.io/build.start-policy": bc.spec?.runPolicy ?? "Serial",
      },
      annotations: {
        ...options.request?.metadata?.annotations,
        "openshift.io/build-config.name": name,
        "openshift.io/build.number": String(version),
      },
      ownerReferences: [{
        apiVersion: "build.openshift.io/v1",
        kind: "BuildConfig",
        name,
        uid: bc.metadata.uid,
        controller: true,
      }],
    },
    spec,
    status: { phase: "New", config: { kind: "BuildConfig", namespace, name } },
  };
  return await client.create(resourcePath(BUILDS, namespace), build, options.signal);
}

/** Serves `buildconfigs/{name}/instantiate` in the world; returns the function that unregisters it. */
export function registerInstantiateHook(hooks: KubeWorldHooks, client: KubeClient): () => void {
  return hooks.onVirtualCreate(
    { group: "build.openshift.io", resource: "buildconfigs", subresource: "instantiate" },
    async (request) => {
      if (request.dryRun) {
        throw new KubeStatusError(
          400,
          "BadRequest",
          "dry run of instantiate is not supported by the test world",
        );
      }
      try {
        return await instantiateBuildConfig(client, request.namespace, request.name, {
          request: request.body as KubeObject,
        });
      } catch (error) {
        // Pass the inner refusal (404, a webhook's denial) through with its status.
        if (error instanceof KubeError && error.status > 0) {
          throw new KubeStatusError(error.status, error.reason || "InternalError", error.serverMessage);
        }
        throw error;
      }
    },
  );
}
