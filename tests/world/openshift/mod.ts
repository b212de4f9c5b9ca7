/**
 * @module
 * OpenShift's small behaviours for the test world, as controllers that talk to a Kubernetes API
 * over HTTP only, so the same code runs against the in-process world (`mode: "world"`, where the
 * virtual creates plug into its hooks) and a real kube-apiserver with the OpenShift CRDs
 * (`mode: "apiserver"`, where an admission webhook makes the stored ImageStreamImport CRD answer
 * like OpenShift's virtual resource, a controller imports objects stored before it was called, and
 * BuildConfigs are instantiated with {@linkcode instantiateBuildConfig}).
 *
 * ```ts
 * const openshift = startOpenShiftBehaviours({ url, token, caPem, registryCaPem, mode: "world", hooks });
 * // ... namespaces get service accounts and SCC annotations, builds run and push ...
 * await openshift.stop();
 * ```
 */
import type { KubeWorldHooks } from "../kube/hooks.ts";
import { startBuildBehaviour } from "./builds.ts";
import { registerImportHook, startImportController } from "./image_import.ts";
import { startImportWebhook } from "./import_webhook.ts";
import { registerInstantiateHook } from "./instantiate.ts";
import { KubeClient } from "./kube_client.ts";
import { startProjectBehaviour } from "./projects.ts";

export { INTERNAL_REGISTRY, resolvePushCredentials, startBuildBehaviour } from "./builds.ts";
export { importImages, namespacePullSecrets, startImportController } from "./image_import.ts";
export { IMPORT_WEBHOOK_CONFIG, type ImportWebhook, startImportWebhook } from "./import_webhook.ts";
export { instantiateBuildConfig } from "./instantiate.ts";
export { type KubeAccess, KubeClient, KubeError, type KubeObject, resourcePath } from "./kube_client.ts";
export {
  MCS_ANNOTATION,
  PROJECT_SERVICE_ACCOUNTS,
  startProjectBehaviour,
  SUPPLEMENTAL_GROUPS_ANNOTATION,
  UID_RANGE_ANNOTATION,
} from "./projects.ts";
export { pullAsServiceAccount, type PullAsServiceAccountOptions, type PullResult } from "./pull.ts";

/** Knobs of the behaviours. */
export interface OpenShiftBehaviourOptions {
  /** Delay between a project's service accounts and its SCC annotations. @default 300 ms */
  sccDelayMs?: number;
  /** Time each build phase lasts. @default 100 ms */
  buildStepMs?: number;
}

/** Options of {@linkcode startOpenShiftBehaviours}. */
export interface StartOpenShiftOptions extends OpenShiftBehaviourOptions {
  /** API server `https://host:port`. */
  url: string;
  /** A token allowed to do everything (the admin's). */
  token: string;
  /** CA PEM of the API server. */
  caPem: string;
  /** CA PEM trusted for registries (pushes and imports). */
  registryCaPem?: string;
  /** `"world"`: virtual creates through `hooks`; `"apiserver"`: a controller for stored ImageStreamImports. */
  mode: "world" | "apiserver";
  /** The world's hooks; required in `"world"` mode. */
  hooks?: KubeWorldHooks;
}

/** Running behaviours. */
export interface OpenShiftBehaviours {
  /** The client they use (admin), handy for tests. */
  readonly client: KubeClient;
  /**
   * Resolves when every behaviour is in place: in `"apiserver"` mode, once the ImageStreamImport
   * admission webhook is registered (see `import_webhook.ts`); at once in `"world"` mode.
   */
  readonly ready: Promise<void>;
  /** Stops every controller and hook; resolves when nothing runs and every watch is closed. */
  stop(): Promise<void>;
}

/** Starts every behaviour. */
export function startOpenShiftBehaviours(options: StartOpenShiftOptions): OpenShiftBehaviours {
  const client = new KubeClient({ url: options.url, token: options.token, caPem: options.caPem });
  const stops: (() => Promise<void> | void)[] = [];
  let ready = Promise.resolve();
  if (options.mode === "world") {
    if (!options.hooks) throw new Error('startOpenShiftBehaviours: mode "world" needs the world\'s hooks');
    stops.push(registerInstantiateHook(options.hooks, client));
    stops.push(registerImportHook(options.hooks, client, options.registryCaPem));
  } else {
    // The webhook answers creates as OpenShift's virtual resource does; the controller imports the
    // objects stored before the apiserver called it.
    const webhook = startImportWebhook({ client, registryCaPem: options.registryCaPem });
    ready = webhook.ready;
    stops.push(() => webhook.stop());
    stops.push(startImportController({ client, registryCaPem: options.registryCaPem }));
  }
  stops.push(startProjectBehaviour({ client, sccDelayMs: options.sccDelayMs }));
  stops.push(
    startBuildBehaviour({ client, registryCaPem: options.registryCaPem, buildStepMs: options.buildStepMs }),
  );
  let stopping: Promise<void> | undefined;
  return {
    client,
    ready,
    stop() {
      stopping ??= (async () => {
        await Promise.all(stops.map((stop) => stop()));
        client.close();
      })();
      return stopping;
    },
  };
}
