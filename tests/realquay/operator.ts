/**
 * @module
 * The operator as a subprocess on the real kube-apiserver (deploy/'s CRDs and RBAC, OpenShift's
 * behaviours, webhook off), its QuayIntegration pointing at the real Quay: shared by the operator
 * tests of this folder.
 */
import { startOperatorProcess } from "../cli/process.ts";
import { installIntegration, jsonClient } from "../walkthrough/setup.ts";
import { startOpenShiftBehaviours } from "../world/openshift/mod.ts";
import { applyDeploy, startRealCluster } from "../cluster/mod.ts";
import type { RealQuay } from "./mod.ts";

const OPERATOR_NAMESPACE = "quay-bridge";

/** Polls `check` every 500 ms until it returns a value; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A real cluster with deploy/'s CRDs and RBAC, OpenShift's behaviours and the operator on `token`. */
export async function withOperator(
  quay: RealQuay,
  token: string,
  fn: (env: { kube: ReturnType<typeof jsonClient>; lines: () => string }) => Promise<void>,
): Promise<void> {
  await using cluster = await startRealCluster();
  await applyDeploy(cluster);
  const kube = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  const openshift = startOpenShiftBehaviours({
    url: cluster.url,
    token: cluster.adminToken,
    caPem: cluster.caPem,
    registryCaPem: quay.caPem,
    mode: "apiserver",
  });
  const kubeconfig = `${cluster.dir}/operator.kubeconfig`;
  let operator: ReturnType<typeof startOperatorProcess> | undefined;
  try {
    await cluster.writeKubeconfig(kubeconfig, {
      token: cluster.operatorToken,
      namespace: OPERATOR_NAMESPACE,
    });
    await openshift.ready;
    await installIntegration(kube, {
      operatorNamespace: OPERATOR_NAMESPACE,
      quayUrl: quay.url,
      quayToken: token,
      quayCaPem: quay.caPem,
    });
    operator = startOperatorProcess(
      [
        "--kubeconfig",
        kubeconfig,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--webhook-mode",
        "off",
        "--ops-port",
        "0",
      ],
      { NO_PROXY: "localhost,127.0.0.1", no_proxy: "localhost,127.0.0.1" },
    );
    const running = operator;
    await fn({ kube, lines: () => running.lines.slice(-40).join("\n") });
  } finally {
    if (operator) {
      operator.kill("SIGTERM");
      await operator.status;
    }
    await openshift.stop();
    kube.close();
  }
}

/** Waits until the organization exists in Quay with the robots of the three service accounts. */
export async function synced(quay: RealQuay, org: string, timeoutMs: number): Promise<void> {
  await until(`organization ${org} with its three robots`, timeoutMs, async () => {
    const r = await quay.api("GET", `/api/v1/organization/${org}/robots`);
    const robots = (r.json as { robots?: { name: string }[] } | undefined)?.robots ?? [];
    return r.status === 200 && robots.length === 3 ? true : undefined;
  });
}
