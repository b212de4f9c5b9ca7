/**
 * @module
 * The two walkthrough steps that need OpenShift's own machinery, done by the world's OpenShift
 * behaviours over plain HTTP, so they work on the test world and on the real kube-apiserver alike:
 * `oc start-build` and a pod pulling with a service account's image pull secrets.
 */
import { instantiateBuildConfig, KubeClient, pullAsServiceAccount } from "../world/openshift/mod.ts";
import type { WalkthroughEnv } from "./mod.ts";

/** Where the cluster and Quay are. */
export interface OpenShiftAccess {
  kubeUrl: string;
  kubeToken: string;
  kubeCaPem: string;
  quayCaPem: string;
}

/** `startBuild` and `pull` for {@linkcode WalkthroughEnv}; `close()` frees the connections. */
export function openShiftActions(
  access: OpenShiftAccess,
): Pick<WalkthroughEnv, "startBuild" | "pull"> & { close(): void } {
  const kube = { url: access.kubeUrl, token: access.kubeToken, caPem: access.kubeCaPem };
  const client = new KubeClient(kube);
  return {
    startBuild: async (ns, bc) => (await instantiateBuildConfig(client, ns, bc)).metadata?.name ?? "",
    pull: async (ns, sa, image) => {
      const result = await pullAsServiceAccount({ kube, ns, sa, image, caPem: access.quayCaPem });
      return { ok: result.ok, message: result.message };
    },
    close: () => client.close(),
  };
}
