/**
 * @module
 * Runs the operator (`runOperator`, as `quay-bridge run` does) against an in-process Kubernetes API
 * and Quay, and gives tests a JSON client for both plus polling helpers. The OpenShift parts a test
 * needs (a project's service accounts and its `sa.scc.mcs` annotation) are made by `createProject`,
 * as the project template and the namespace SCC controller would.
 */
import { type Config, parseConfig } from "../../src/config.ts";
import { runOperator } from "../../src/cli/run.ts";
import { createLogger, type LogLevel } from "../../src/log.ts";
import type { Operator } from "../../src/operator.ts";
import type { Metrics } from "../../src/ops/metrics.ts";
import { type KubeWorld, type KubeWorldOptions, startKubeWorld } from "../world/kube/mod.ts";
import { type QuayWorld, type QuayWorldOptions, startQuayWorld } from "../world/quay/mod.ts";
import { startWorld, type World } from "../world/mod.ts";
import { installCrds, installRbac, jsonClient, OPERATOR_SERVICE_ACCOUNT } from "../walkthrough/setup.ts";
import type { Api } from "../walkthrough/mod.ts";

/** A JSON client of the Kubernetes or Quay API. */
export type JsonClient = Api;

/** Polls `check` until it returns a value other than undefined/false. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Options of {@linkcode startBridge}. */
export interface BridgeOptions {
  /** Also run OpenShift's behaviours (project SAs, builds that push, image imports): the full world. */
  openshift?: boolean;
  kube?: KubeWorldOptions;
  quay?: QuayWorldOptions;
  /** Extra `run` flags, e.g. `["--resync", "1s"]`. */
  flags?: string[];
  /** Create the default QuayIntegration `quay` (clusterID openshift). @default true */
  integration?: boolean;
  /** Spec fields merged into the default integration. */
  integrationSpec?: Record<string, unknown>;
  /**
   * Run the operator with the admin identity instead of its ServiceAccount bound by deploy/rbac
   * (only for tests of things RBAC does not govern). @default false
   */
  admin?: boolean;
  /** Start the operator at once. @default true */
  start?: boolean;
  logLevel?: LogLevel;
}

/** The operator process started by {@linkcode Bridge.startOperator}. */
export interface RunningOperator {
  operator: Operator;
  metrics: Metrics;
  /** Aborts the run and waits for its exit code. */
  stop(): Promise<number>;
  /** The exit code once `run` returned. */
  exited: Promise<number>;
}

/** A world with the operator running in it. */
export interface Bridge {
  /** The full world, when started with `openshift: true`. */
  world: World | undefined;
  kubeWorld: KubeWorld;
  quayWorld: QuayWorld;
  kube: JsonClient;
  quay: JsonClient;
  /** The operator's kubeconfig (its ServiceAccount token unless `admin`). */
  kubeconfig: string;
  /** An admin kubeconfig. */
  adminKubeconfig: string;
  /** Log lines the operator wrote (JSON objects). */
  logs: Record<string, unknown>[];
  running: RunningOperator | undefined;
  startOperator(flags?: string[]): Promise<RunningOperator>;
  /** A namespace as an OpenShift project: SAs builder/default/deployer, then the SCC annotation. */
  createProject(name: string, labels?: Record<string, string>): Promise<void>;
  /** Creates (or replaces the spec of) a quay.redhat.com/v1 QuayIntegration. */
  applyIntegration(name: string, spec: Record<string, unknown>): Promise<void>;
  /** The default integration spec (credentials Secret quay-bridge/quay-integration, the world's CA). */
  integrationSpec(extra?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

export const OPERATOR_NAMESPACE = "quay-bridge";
export const CREDENTIALS_SECRET = "quay-integration";

/** Starts the worlds and (unless told not to) the operator with a default integration. */
export async function startBridge(options: BridgeOptions = {}): Promise<Bridge> {
  let world: World | undefined;
  if (options.openshift) world = await startWorld({ kube: options.kube, quay: options.quay });
  const kubeWorld = world?.kube ?? await startKubeWorld(options.kube);
  const quayWorld = world?.quay ?? await startQuayWorld(options.quay);
  const closers: (() => void)[] = [];
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-it-" });
  const adminKubeconfig = await kubeWorld.writeKubeconfig(`${dir}/admin-kubeconfig`);
  // The operator runs as its ServiceAccount with only the permissions deploy/rbac grants, so a
  // verb missing there fails these tests as it would fail on a cluster.
  const operatorToken = `operator-${crypto.randomUUID()}`;
  kubeWorld.addToken(operatorToken, {
    user: `system:serviceaccount:quay-bridge:${OPERATOR_SERVICE_ACCOUNT}`,
  });
  const kubeconfig = options.admin
    ? adminKubeconfig
    : await kubeWorld.writeKubeconfig(`${dir}/kubeconfig`, { token: operatorToken });
  const kube = jsonClient(kubeWorld.url, kubeWorld.adminToken, kubeWorld.caPem);
  const quay = jsonClient(quayWorld.url, quayWorld.adminToken, quayWorld.caPem);
  closers.push(() => kube.close(), () => quay.close());
  const logs: Record<string, unknown>[] = [];

  await kube.ok("POST", "/api/v1/namespaces", { metadata: { name: OPERATOR_NAMESPACE } });
  await installRbac(kube);
  await kube.ok("POST", `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
    metadata: { name: CREDENTIALS_SECRET },
    stringData: { token: quayWorld.adminToken },
  });

  const integrationSpec = (extra: Record<string, unknown> = {}) => ({
    clusterID: "openshift",
    credentialsSecret: { namespace: OPERATOR_NAMESPACE, name: CREDENTIALS_SECRET, key: "token" },
    quayHostname: quayWorld.url,
    caBundle: quayWorld.caPem,
    ...extra,
  });

  const bridge: Bridge = {
    world,
    kubeWorld,
    quayWorld,
    kube,
    quay,
    kubeconfig,
    adminKubeconfig,
    logs,
    running: undefined,
    integrationSpec,
    async startOperator(flags = options.flags ?? []) {
      const config: Config = parseConfig({
        args: [
          "run",
          "--kubeconfig",
          kubeconfig,
          "--namespace",
          OPERATOR_NAMESPACE,
          "--ops-port",
          "0",
          "--webhook-mode",
          "off",
          "--leader-elect",
          "false",
          ...flags,
        ],
        env: () => undefined,
        inClusterNamespace: () => undefined,
      });
      const logger = createLogger({
        level: options.logLevel ?? "debug",
        fields: { component: "quay-bridge" },
        sink: (line: string) => {
          try {
            logs.push(JSON.parse(line));
          } catch {
            logs.push({ msg: line });
          }
        },
      });
      const abort = new AbortController();
      let started: (h: { operator: Operator; metrics: Metrics }) => void = () => {};
      const ready = new Promise<{ operator: Operator; metrics: Metrics }>((resolve) => started = resolve);
      const exited = runOperator({ config, logger, signal: abort.signal, onStarted: (h) => started(h) });
      const handle = await Promise.race([
        ready,
        exited.then((code) => {
          throw new Error(`operator exited with ${code} before starting: ${JSON.stringify(logs.slice(-5))}`);
        }),
      ]);
      const running: RunningOperator = {
        ...handle,
        exited,
        async stop() {
          abort.abort();
          return await exited;
        },
      };
      bridge.running = running;
      return running;
    },
    async createProject(name, labels = {}) {
      await kube.ok("POST", "/api/v1/namespaces", {
        metadata: { name, labels, annotations: { "openshift.io/requester": "developer" } },
      });
      for (const sa of ["builder", "default", "deployer"]) {
        const reply = await kube.call("POST", `/api/v1/namespaces/${name}/serviceaccounts`, {
          metadata: { name: sa },
        });
        if (reply.status !== 201 && reply.status !== 409) throw new Error(`SA ${sa}: ${reply.status}`);
      }
      await kube.ok(
        "PATCH",
        `/api/v1/namespaces/${name}`,
        { metadata: { annotations: { "openshift.io/sa.scc.mcs": "s0:c26,c15" } } },
        "application/merge-patch+json",
      );
    },
    async applyIntegration(name, spec) {
      const path = `/apis/quay.redhat.com/v1/quayintegrations`;
      const existing = await kube.call("GET", `${path}/${name}`);
      if (existing.status === 200) {
        await kube.ok("PATCH", `${path}/${name}`, { spec }, "application/merge-patch+json");
      } else {
        await kube.ok("POST", path, {
          apiVersion: "quay.redhat.com/v1",
          kind: "QuayIntegration",
          metadata: { name },
          spec,
        });
      }
    },
    async close() {
      if (bridge.running) await bridge.running.stop();
      for (const close of closers) close();
      if (world) {
        await world.close();
      } else {
        await quayWorld.close();
        await kubeWorld.close();
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };

  try {
    await installCrds(kube);
    if (options.integration !== false) {
      await bridge.applyIntegration("quay", integrationSpec(options.integrationSpec));
    }
    if (options.start !== false) await bridge.startOperator();
  } catch (error) {
    await bridge.close();
    throw error;
  }
  return bridge;
}

/**
 * Waits until the operator has synced `ns`: each of builder, default and deployer lists its robot
 * Secret among its image pull secrets (the last thing a sync does).
 */
export async function synced(
  b: Bridge,
  ns: string,
  options: { clusterId?: string; timeoutMs?: number } = {},
): Promise<void> {
  const clusterId = options.clusterId ?? "openshift";
  await until(`${ns} synced`, async () => {
    for (const sa of ["builder", "default", "deployer"]) {
      const got = await b.kube.call("GET", `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`);
      const names = (got.body?.imagePullSecrets ?? []).map((s: { name: string }) => s.name);
      if (!names.includes(`${sa}-quay-${clusterId}`)) return false;
    }
    return true;
  }, options.timeoutMs ?? 20_000);
}
