/**
 * @module
 * The seed walkthrough on a real kube-apiserver with `deploy/webhook/self-managed` applied, against a
 * given Quay (the test world's or a real one): the operator as a subprocess with its service account's
 * token (so only the deploy/ RBAC applies) and leader election on, OpenShift's behaviours against the
 * apiserver. It checks the webhook registration, every walkthrough step, the Lease, that the operator
 * met no 403 and that it exits 0 on SIGTERM.
 */
import assert from "node:assert/strict";
import { freePort, startOperatorProcess } from "../cli/process.ts";
import { formatStep, runWalkthrough, type StepResult } from "../walkthrough/mod.ts";
import { installIntegration, jsonClient } from "../walkthrough/setup.ts";
import { openShiftActions } from "../walkthrough/openshift_actions.ts";
import { startOpenShiftBehaviours } from "../world/openshift/mod.ts";
import type { RealCluster } from "./cluster.ts";

const OPERATOR_NAMESPACE = "quay-bridge";
const WEBHOOK_CONFIG = "quay-bridge";

const encoder = new TextEncoder();
/** Writes a line to the test's output (the steps, as the demo prints them). */
function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The Quay the walkthrough runs against. */
export interface WalkthroughQuay {
  /** `https://host:port` of the API and the registry. */
  readonly url: string;
  /** A super user's token. */
  readonly token: string;
  /** PEM of the CA of Quay's serving certificate. */
  readonly caPem: string;
  /** The registry host in image references. */
  readonly registryHost: string;
}

/** Options of {@linkcode walkthroughOnRealCluster}. */
export interface WalkthroughOnClusterOptions {
  /** Named in the timing line. */
  readonly label: string;
  /** When the test began (`performance.now()`), for the timing line. */
  readonly started: number;
  /** The project's name (default: the walkthrough's). */
  readonly project?: string;
  /** Patience per step. */
  readonly stepTimeoutMs?: number;
}

/** Runs the walkthrough on `cluster` (deploy/ applied) against `quay`; throws when a step fails. */
export async function walkthroughOnRealCluster(
  cluster: RealCluster,
  quay: WalkthroughQuay,
  options: WalkthroughOnClusterOptions,
): Promise<void> {
  const kube = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  const quayApi = jsonClient(quay.url, quay.token, quay.caPem);
  const openshift = startOpenShiftBehaviours({
    url: cluster.url,
    token: cluster.adminToken,
    caPem: cluster.caPem,
    registryCaPem: quay.caPem,
    mode: "apiserver",
  });
  const actions = openShiftActions({
    kubeUrl: cluster.url,
    kubeToken: cluster.adminToken,
    kubeCaPem: cluster.caPem,
    quayCaPem: quay.caPem,
  });
  const kubeconfig = `${cluster.dir}/operator.kubeconfig`;
  const webhookPort = freePort();
  let operator: ReturnType<typeof startOperatorProcess> | undefined;
  const steps: StepResult[] = [];
  try {
    await cluster.writeKubeconfig(kubeconfig, {
      token: cluster.operatorToken,
      namespace: OPERATOR_NAMESPACE,
    });
    await openshift.ready;
    await installIntegration(kube, {
      operatorNamespace: OPERATOR_NAMESPACE,
      quayUrl: quay.url,
      quayToken: quay.token,
      quayCaPem: quay.caPem,
    });
    operator = startOperatorProcess([
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      OPERATOR_NAMESPACE,
      "--webhook-mode",
      "self-managed",
      "--webhook-host",
      "127.0.0.1",
      "--webhook-port",
      String(webhookPort),
      "--ops-host",
      "127.0.0.1",
      "--ops-port",
      "0",
      "--leader-elect",
      "true",
    ], { NO_PROXY: "localhost,127.0.0.1", no_proxy: "localhost,127.0.0.1" });
    const running = operator;
    const diagnostics = async () =>
      `\n--- operator (last 40 lines) ---\n${running.lines.slice(-40).join("\n")}` +
      `\n--- kube-apiserver (last 30 lines) ---\n${tail(await cluster.logs(), 30)}`;

    // The operator takes over deploy/'s MutatingWebhookConfiguration: its URL and its own CA.
    const url = `https://127.0.0.1:${webhookPort}/admissionwebhook`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const mwc = await kube.call(
        "GET",
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`,
      );
      const clientConfig = mwc.body?.webhooks?.[0]?.clientConfig;
      if (clientConfig?.url === url && clientConfig?.caBundle) break;
      if (Date.now() > deadline) {
        assert.fail(`the operator did not register its webhook at ${url}${await diagnostics()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }

    const passed = await runWalkthrough({
      kube,
      quay: quayApi,
      registryHost: quay.registryHost,
      ...(options.project === undefined ? {} : { project: options.project }),
      ...(options.stepTimeoutMs === undefined ? {} : { stepTimeoutMs: options.stepTimeoutMs }),
      ...actions,
    }, (step) => {
      steps.push(step);
      print(formatStep(step).trimEnd());
    });
    if (!passed) assert.fail(`the walkthrough failed at "${steps.at(-1)?.title}"${await diagnostics()}`);

    const lease = await kube.call(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases`,
    );
    assert.equal(lease.status, 200);
    assert.ok(lease.body.items.length >= 1, "leader election keeps a Lease in the operator's namespace");

    operator.kill("SIGTERM");
    const status = await operator.status;
    operator = undefined;
    const warnings = running.lines.filter((line) => /"level":"(warn|error)"/.test(line));
    if (warnings.length) print(`operator warnings and errors:\n${warnings.join("\n")}`);
    const forbidden = running.lines.filter((line) => /\b403\b|forbidden/i.test(line));
    assert.deepEqual(forbidden, [], "the deploy/ RBAC lets the operator do everything it does");
    assert.equal(status.code, 0, `the operator exits 0 on SIGTERM${await diagnostics()}`);
    print(`walkthrough on ${options.label}: ${((performance.now() - options.started) / 1000).toFixed(1)} s`);
  } finally {
    if (operator) {
      operator.kill("SIGKILL");
      await operator.status;
    }
    await openshift.stop();
    actions.close();
    kube.close();
    quayApi.close();
  }
}
