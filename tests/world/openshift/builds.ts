/**
 * @module
 * The build controller and builder pod, shrunk to what the operator can observe: a Build walks
 * New -> Pending -> Running -> Complete | Failed, one step every `buildStepMs`, and while Running
 * pushes a small image to `spec.output.to` (kind `DockerImage`) with the push secret OpenShift would
 * use. Each step is one update guarded by resourceVersion, so a Build changed meanwhile (cancelled,
 * deleted) is re-read rather than overwritten, and a restarted controller resumes where it was.
 */
import { pushImage } from "../quay/registry_client.ts";
import { KeyedRunner, keyOf, runInformer, sleep, splitKey } from "./controller.ts";
import {
  credentialsForHost,
  parseImageReference,
  readSecrets,
  type RegistryCredential,
  serviceAccountSecretNames,
} from "./credentials.ts";
import { BUILDS } from "./instantiate.ts";
import { type KubeClient, type KubeObject, resourcePath } from "./kube_client.ts";

/** Where OpenShift's internal registry is reached from inside the cluster. */
export const INTERNAL_REGISTRY = "image-registry.openshift-image-registry.svc:5000";

/** Options of {@linkcode startBuildBehaviour}. */
export interface BuildBehaviourOptions {
  client: KubeClient;
  /** CA PEM trusted for registries (the Quay world's). */
  registryCaPem?: string;
  /** Time each phase lasts. @default 100 ms */
  buildStepMs?: number;
}

/** What a Build's push ended with. */
type PushOutcome =
  | { ok: true; reference?: string; digest?: string }
  | { ok: false; reason: string; message: string; detail: string };

const TERMINAL = new Set(["Complete", "Failed", "Error", "Cancelled"]);

/** The push credentials OpenShift resolves: the output push secret, else the build SA's secrets for the host. */
export async function resolvePushCredentials(
  client: KubeClient,
  build: KubeObject,
  host: string,
  signal?: AbortSignal,
): Promise<RegistryCredential[]> {
  const namespace = build.metadata.namespace ?? "";
  const pushSecret = build.spec?.output?.pushSecret?.name as string | undefined;
  if (pushSecret) return credentialsForHost(await readSecrets(client, namespace, [pushSecret], signal), host);
  const sa = (build.spec?.serviceAccount as string | undefined) || "builder";
  const names = await serviceAccountSecretNames(client, namespace, sa, "secrets", signal);
  return credentialsForHost(await readSecrets(client, namespace, names, signal), host);
}

async function pushOutput(
  client: KubeClient,
  build: KubeObject,
  registryCaPem: string | undefined,
  signal: AbortSignal,
): Promise<PushOutcome> {
  const to = build.spec?.output?.to as { kind?: string; name?: string; namespace?: string } | undefined;
  if (!to?.name) return { ok: true };
  if (to.kind === "ImageStreamTag") {
    // Pushed to the internal registry, which the test world does not model beyond the reference.
    const namespace = to.namespace ?? build.metadata.namespace;
    return { ok: true, reference: `${INTERNAL_REGISTRY}/${namespace}/${to.name}` };
  }
  if (to.kind !== "DockerImage") {
    return {
      ok: false,
      reason: "InvalidOutputReference",
      message: "Output image could not be resolved.",
      detail: `unsupported output kind ${to.kind}`,
    };
  }
  try {
    const image = parseImageReference(to.name);
    const [credential] = await resolvePushCredentials(client, build, image.host, signal);
    const pushed = await pushImage({
      registryUrl: `https://${image.host}`,
      caPem: registryCaPem,
      repository: image.repository,
      tag: image.reference,
      username: credential?.username,
      password: credential?.password,
      labels: { "io.openshift.build.name": build.metadata.name },
      signal,
    });
    return { ok: true, reference: to.name, digest: pushed.digest };
  } catch (error) {
    return {
      ok: false,
      reason: "PushImageToRegistryFailed",
      message: "Failed to push the image to the registry.",
      detail: (error as Error).message,
    };
  }
}

/** Starts the behaviour; the returned function stops it and resolves when nothing runs. */
export function startBuildBehaviour(options: BuildBehaviourOptions): () => Promise<void> {
  const { client, registryCaPem } = options;
  const step = options.buildStepMs ?? 100;
  const abort = new AbortController();
  const signal = abort.signal;

  async function reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const path = resourcePath(BUILDS, namespace, name);
    const build = await client.get(path, signal);
    if (!build || build.metadata.deletionTimestamp) return;
    const phase = (build.status?.phase as string | undefined) ?? "New";
    if (TERMINAL.has(phase) || build.status?.cancelled) return;
    await sleep(step, signal);
    if (signal.aborted) return;
    const now = new Date().toISOString();
    const status: Record<string, unknown> = { ...build.status };
    if (phase === "New") {
      status.phase = "Pending";
      status.reason = undefined;
    } else if (phase === "Pending") {
      status.phase = "Running";
      status.startTimestamp = now;
    } else {
      const outcome = await pushOutput(client, build, registryCaPem, signal);
      if (signal.aborted) return;
      status.completionTimestamp = now;
      const started = Date.parse(String(status.startTimestamp ?? now));
      status.duration = (Date.now() - started) * 1_000_000; // nanoseconds, as Go's time.Duration
      if (outcome.ok) {
        status.phase = "Complete";
        if (outcome.reference) status.outputDockerImageReference = outcome.reference;
        if (outcome.digest) status.output = { to: { imageDigest: outcome.digest } };
      } else {
        status.phase = "Failed";
        status.reason = outcome.reason;
        status.message = outcome.message;
        status.logSnippet = outcome.detail;
      }
    }
    // A conflict throws and the runner retries from a fresh read.
    await client.replaceStatus(path, { ...build, status: JSON.parse(JSON.stringify(status)) }, signal);
  }

  const runner = new KeyedRunner(reconcile, signal);
  const informer = runInformer({
    client,
    path: resourcePath(BUILDS),
    onObject: (build) => {
      if (!TERMINAL.has(build.status?.phase)) runner.enqueue(keyOf(build));
    },
    signal,
  });
  return async () => {
    abort.abort();
    await informer;
    await runner.idle();
  };
}
