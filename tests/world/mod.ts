/**
 * @module
 * The whole test world in one call: the Kubernetes/OpenShift API server, Quay (API and registry),
 * and OpenShift's behaviours (project service accounts and SCC annotations, builds that push,
 * image imports) wired together, with an admin kubeconfig and Quay's CA written to a temp dir.
 *
 * ```ts
 * const world = await startWorld();
 * // kubectl --kubeconfig world.kubeconfigPath get namespaces
 * await world.close();
 * ```
 */
import { type KubeWorld, type KubeWorldOptions, startKubeWorld } from "./kube/mod.ts";
import {
  type OpenShiftBehaviourOptions,
  type OpenShiftBehaviours,
  startOpenShiftBehaviours,
} from "./openshift/mod.ts";
import { type QuayWorld, type QuayWorldOptions, startQuayWorld } from "./quay/mod.ts";

/** Options of {@linkcode startWorld}; each part's options pass through. */
export interface WorldOptions {
  kube?: KubeWorldOptions;
  quay?: QuayWorldOptions;
  openshift?: OpenShiftBehaviourOptions;
}

/** A running world. */
export interface World {
  readonly kube: KubeWorld;
  readonly quay: QuayWorld;
  readonly openshift: OpenShiftBehaviours;
  /** Admin kubeconfig in the world's temp dir. */
  readonly kubeconfigPath: string;
  readonly kubeUrl: string;
  readonly kubeCaPem: string;
  /** Kubernetes admin bearer token (`system:admin`, `system:masters`). */
  readonly adminToken: string;
  readonly quayUrl: string;
  /** OAuth token of Quay superuser `quayadmin` with every scope. */
  readonly quayToken: string;
  /** `127.0.0.1:<port>`: Quay's registry host for pull specs. */
  readonly registryHost: string;
  /** Path of Quay's CA PEM in the world's temp dir. */
  readonly quayCaFile: string;
  readonly quayCaPem: string;
  /** The temp dir removed on close. */
  readonly dir: string;
  /** Writes a kubeconfig for this world (admin unless `token` says otherwise); returns its path. */
  writeKubeconfig(path: string, options?: { token?: string; namespace?: string }): Promise<string>;
  /** Registers a token for `system:serviceaccount:<ns>:<name>` and writes a kubeconfig for it in the temp dir. */
  serviceAccountKubeconfig(ns: string, name: string): Promise<string>;
  /** Stops everything and removes the temp dir; safe to call twice. */
  close(): Promise<void>;
}

function randomToken(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** Starts Kubernetes, Quay and the OpenShift behaviours; resolves when all serve. */
export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-world-" });
  const started: { close(): Promise<void> }[] = [];
  try {
    const kube = await startKubeWorld(options.kube);
    started.push(kube);
    const quay = await startQuayWorld(options.quay);
    started.push(quay);
    const openshift = startOpenShiftBehaviours({
      ...options.openshift,
      url: kube.url,
      token: kube.adminToken,
      caPem: kube.caPem,
      registryCaPem: quay.caPem,
      mode: "world",
      hooks: kube.hooks,
    });
    const kubeconfigPath = await kube.writeKubeconfig(`${dir}/kubeconfig`);
    const quayCaFile = `${dir}/quay-ca.pem`;
    await Deno.writeTextFile(quayCaFile, quay.caPem);
    let closing: Promise<void> | undefined;
    return {
      kube,
      quay,
      openshift,
      kubeconfigPath,
      kubeUrl: kube.url,
      kubeCaPem: kube.caPem,
      adminToken: kube.adminToken,
      quayUrl: quay.url,
      quayToken: quay.adminToken,
      registryHost: quay.registryHost,
      quayCaFile,
      quayCaPem: quay.caPem,
      dir,
      writeKubeconfig: (path, kc) => kube.writeKubeconfig(path, kc),
      async serviceAccountKubeconfig(ns, name) {
        const token = randomToken();
        kube.addToken(token, { user: `system:serviceaccount:${ns}:${name}` });
        return await kube.writeKubeconfig(`${dir}/sa-${ns}-${name}.kubeconfig`, { token, namespace: ns });
      },
      close() {
        // Behaviours first, so no controller is mid-request when the servers go.
        closing ??= (async () => {
          await openshift.stop();
          await quay.close();
          await kube.close();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        })();
        return closing;
      },
    };
  } catch (error) {
    for (const part of started.reverse()) await part.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}
