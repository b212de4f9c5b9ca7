/**
 * @module
 * What OpenShift does to a new namespace: the service-account controller creates `builder`,
 * `default` and `deployer`, and a little later the namespace SCC allocator annotates the namespace
 * with its SELinux MCS label and UID/supplemental-group ranges. The operator treats that
 * `openshift.io/sa.scc.mcs` annotation as "the project is ready", so the delay is a knob.
 */
import { KeyedRunner, keyOf, runInformer, sleep } from "./controller.ts";
import { type KubeClient, KubeError, resourcePath } from "./kube_client.ts";

/** Options of {@linkcode startProjectBehaviour}. */
export interface ProjectBehaviourOptions {
  client: KubeClient;
  /** Delay between the service accounts and the SCC annotations. @default 300 ms */
  sccDelayMs?: number;
}

/** The service accounts every OpenShift project gets. */
export const PROJECT_SERVICE_ACCOUNTS = ["builder", "default", "deployer"] as const;
export const MCS_ANNOTATION = "openshift.io/sa.scc.mcs";
export const UID_RANGE_ANNOTATION = "openshift.io/sa.scc.uid-range";
export const SUPPLEMENTAL_GROUPS_ANNOTATION = "openshift.io/sa.scc.supplemental-groups";

const NAMESPACES = { group: "", version: "v1", resource: "namespaces" };
const SERVICE_ACCOUNTS = { group: "", version: "v1", resource: "serviceaccounts" };

/** The n-th block of OpenShift's allocator: MCS category pairs c1,c0; c2,c0; c2,c1; ... and 10000 UIDs. */
export function sccAnnotations(index: number): Record<string, string> {
  let high = 1;
  let remaining = index;
  while (remaining >= high) {
    remaining -= high;
    high++;
  }
  const range = `${1_000_000_000 + (index + 1) * 10_000}/10000`;
  return {
    [MCS_ANNOTATION]: `s0:c${high},c${remaining}`,
    [UID_RANGE_ANNOTATION]: range,
    [SUPPLEMENTAL_GROUPS_ANNOTATION]: range,
  };
}

/** Starts the behaviour; the returned function stops it and resolves when nothing runs. */
export function startProjectBehaviour(options: ProjectBehaviourOptions): () => Promise<void> {
  const { client } = options;
  const delay = options.sccDelayMs ?? 300;
  const abort = new AbortController();
  const signal = abort.signal;
  let nextBlock = 0;

  async function reconcile(name: string): Promise<void> {
    const namespace = await client.get(resourcePath(NAMESPACES, undefined, name), signal);
    if (!namespace || namespace.metadata.deletionTimestamp || namespace.status?.phase === "Terminating") {
      return;
    }
    if (namespace.metadata.annotations?.[MCS_ANNOTATION]) return;
    for (const sa of PROJECT_SERVICE_ACCOUNTS) {
      try {
        await client.create(
          resourcePath(SERVICE_ACCOUNTS, name),
          { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa } },
          signal,
        );
      } catch (error) {
        // 409: it exists (the kube-controller-manager makes `default` on a real apiserver).
        if (!(error instanceof KubeError && error.status === 409)) throw error;
      }
    }
    await sleep(delay, signal);
    if (signal.aborted) return;
    await client.mergePatch(
      resourcePath(NAMESPACES, undefined, name),
      { metadata: { annotations: sccAnnotations(nextBlock++) } },
      signal,
    );
  }

  const runner = new KeyedRunner(reconcile, signal);
  const informer = runInformer({
    client,
    path: resourcePath(NAMESPACES),
    onObject: (ns) => {
      if (!ns.metadata.annotations?.[MCS_ANNOTATION] && !ns.metadata.deletionTimestamp) {
        runner.enqueue(keyOf(ns));
      }
    },
    signal,
  });
  return async () => {
    abort.abort();
    await informer;
    await runner.idle();
  };
}
