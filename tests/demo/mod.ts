/**
 * @module
 * `quay-bridge demo`: starts the test world (Kubernetes/OpenShift API, Quay, OpenShift's
 * behaviours), installs the CRDs, the token Secret and a QuayIntegration, runs the operator against
 * it exactly as `quay-bridge run --kubeconfig` does (self-managed webhook registered by URL), and
 * plays the seed walkthrough step by step. Exit code 0 only when every step held.
 *
 * It lives under tests/ because the world is test infrastructure, not part of the binary; main.ts
 * loads it by a computed specifier.
 */
import { runOperator } from "../../src/cli/run.ts";
import { type Config, parseConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { startWorld } from "../world/mod.ts";
import { freePort } from "../cli/process.ts";
import { formatStep, runWalkthrough } from "../walkthrough/mod.ts";
import { openShiftActions } from "../walkthrough/openshift_actions.ts";
import {
  installCrds,
  installIntegration,
  installRbac,
  jsonClient,
  OPERATOR_SERVICE_ACCOUNT,
} from "../walkthrough/setup.ts";

/** Options of {@linkcode runDemo} (main.ts passes the parsed CLI configuration). */
export interface DemoOptions {
  config: Config;
  write: (text: string) => void;
  signal: AbortSignal;
}

const OPERATOR_NAMESPACE = "quay-bridge";

/** Runs the demo; resolves to the process exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { write } = options;
  const started = performance.now();
  write("quay-bridge demo: starting the test world (Kubernetes/OpenShift API and Quay on 127.0.0.1)\n");
  const world = await startWorld();
  const kube = jsonClient(world.kubeUrl, world.adminToken, world.kubeCaPem);
  const quay = jsonClient(world.quayUrl, world.quayToken, world.quayCaPem);
  const abort = new AbortController();
  options.signal.addEventListener("abort", () => abort.abort(), { once: true });
  let exited: Promise<number> | undefined;
  try {
    await installCrds(kube);
    await installIntegration(kube, {
      operatorNamespace: OPERATOR_NAMESPACE,
      quayUrl: world.quayUrl,
      quayToken: world.quayToken,
      quayCaPem: world.quayCaPem,
    });
    // The operator runs as its ServiceAccount with exactly the permissions deploy/rbac grants.
    await installRbac(kube);
    const operatorKubeconfig = await world.serviceAccountKubeconfig(
      OPERATOR_NAMESPACE,
      OPERATOR_SERVICE_ACCOUNT,
    );
    write(`  Kubernetes API ${world.kubeUrl}  (kubectl --kubeconfig ${world.kubeconfigPath})\n`);
    write(`  Quay           ${world.quayUrl}\n`);

    const config = parseConfig({
      args: [
        "run",
        "--kubeconfig",
        operatorKubeconfig,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--webhook-mode",
        "self-managed",
        "--webhook-host",
        "127.0.0.1",
        "--webhook-port",
        String(freePort()),
        "--ops-host",
        "127.0.0.1",
        "--ops-port",
        "0",
        "--leader-elect",
        "false",
      ],
      env: () => undefined,
      inClusterNamespace: () => undefined,
    });
    // The operator's JSON logs would drown the walkthrough: only warnings and errors are shown.
    const logger = createLogger({
      level: options.config.logLevel === "debug" ? "debug" : "warn",
      fields: { component: "quay-bridge" },
      sink: (line) => write(`  log: ${line}\n`),
    });
    let ready: () => void = () => {};
    const startedOperator = new Promise<void>((resolve) => ready = resolve);
    exited = runOperator({ config, logger, signal: abort.signal, onStarted: () => ready() });
    await Promise.race([
      startedOperator,
      exited.then((code) => {
        throw new Error(`the operator exited with ${code} before it started`);
      }),
    ]);
    write(`  operator running, webhook on https://127.0.0.1:${config.webhookPort}${config.webhookPath}\n\n`);

    const actions = openShiftActions({
      kubeUrl: world.kubeUrl,
      kubeToken: world.adminToken,
      kubeCaPem: world.kubeCaPem,
      quayCaPem: world.quayCaPem,
    });
    const passed = await runWalkthrough(
      { kube, quay, registryHost: world.registryHost, ...actions },
      (step) => write(formatStep(step)),
    );
    actions.close();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    write(passed ? `\nAll steps held (${seconds} s).\n` : `\nThe walkthrough failed (${seconds} s).\n`);
    if (options.config.demoKeep && passed) {
      write(`World kept running; Ctrl-C to stop. kubectl --kubeconfig ${world.kubeconfigPath} get ns\n`);
      await new Promise<void>((resolve) =>
        options.signal.addEventListener("abort", () => resolve(), { once: true })
      );
    }
    return passed ? 0 : 1;
  } catch (error) {
    write(`✘ demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    abort.abort();
    await exited?.catch(() => 1);
    kube.close();
    quay.close();
    await world.close();
  }
}
