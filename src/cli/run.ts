/**
 * @module
 * `quay-bridge run`: the operator process. Loads the Kubernetes connection, starts the caches, the
 * operations server and the admission webhook on every replica, and the reconcilers on the elected
 * leader only. One AbortSignal drives shutdown: the queues finish their in-flight work, the Lease is
 * released, the servers drain. Losing the Lease ends the process (its caches and workers may be
 * stale), as controller-runtime does; the Deployment restarts it as a standby.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { KubeClient, loadKubeConnection } from "../kube/client.ts";
import type { Logger } from "../log.ts";
import { Operator } from "../operator.ts";
import { LeaderElector } from "../ops/leader.ts";
import { type Labels, Metrics } from "../ops/metrics.ts";
import { createOpsApp } from "../ops/server.ts";
import { VERSION } from "../version.ts";
import { startWebhook, type WebhookHandle } from "./webhook_wiring.ts";

/** Options for {@linkcode runOperator}. */
export interface RunOptions {
  config: Config;
  logger: Logger;
  /** Aborting it shuts the operator down gracefully. */
  signal: AbortSignal;
  /** Called with the operator once its caches are synced (tests). */
  onStarted?: (handle: { operator: Operator; metrics: Metrics; webhook: WebhookHandle | undefined }) => void;
}

/** Runs until `signal` aborts (exit code 0) or leadership is lost (exit code 1). */
export async function runOperator(options: RunOptions): Promise<number> {
  const { config, logger, signal } = options;
  // The computed gauges read the operator, which is created below with observers that use `metrics`.
  const started: { operator?: Operator } = {};
  const metrics = new Metrics({
    namespaces: () => namespacesByState(started.operator),
    quayReachable: () => quayReachability(started.operator),
  });
  const connection = await loadKubeConnection({ kubeconfig: config.kubeconfig, context: config.context });
  const kube = new KubeClient(connection, {
    userAgent: `quay-bridge/${VERSION}`,
    onCall: ({ verb, resource, status }) =>
      metrics.kubeRequests.inc({ verb, resource, code: String(status) }),
  });
  const operator = new Operator({
    kube,
    logger,
    settings: {
      resyncMs: config.resyncMs,
      deletionBudgetMs: config.deletionBudgetMs,
      concurrency: config.concurrency,
      quay: { timeoutMs: config.quayTimeoutMs },
      instance: config.podName,
      policy: { operatorNamespace: config.namespace, credentialsNamespaces: config.credentialsNamespaces },
    },
    observers: {
      onQuayCall: ({ route, status, durationMs }) => {
        metrics.quayRequests.inc({ route, code: String(status) });
        metrics.quayLatency.observe({ route }, durationMs / 1000);
      },
      queue: (name) => ({
        reconciled: ({ durationMs, error }) => {
          metrics.reconciles.inc({ queue: name, result: error ? "error" : "success" });
          if (error) metrics.reconcileErrors.inc({ queue: name });
          metrics.reconcileDuration.observe({ queue: name }, durationMs / 1000);
        },
        depth: (pending) => metrics.queueDepth.set({ queue: name }, pending),
      }),
    },
  });
  started.operator = operator;

  let leading = false;
  let webhook: WebhookHandle | undefined;
  const ops = config.opsPort > 0
    ? Deno.serve(
      {
        port: config.opsPort,
        hostname: config.opsHost,
        signal,
        onListen: ({ port }) => logger.info("ops server listening", { port }),
      },
      createOpsApp(metrics, {
        healthy: () => ({ ok: true }),
        ready: () => {
          if (!operator.cachesReady) return { ok: false, reason: "caches not synced" };
          if (webhook && !webhook.serving()) return { ok: false, reason: "webhook not serving" };
          return { ok: true };
        },
      }).fetch,
    )
    : undefined;

  try {
    logger.info("starting", { version: VERSION, namespace: config.namespace, identity: config.podName });
    await operator.start();
    if (config.webhookMode !== "off") {
      webhook = await startWebhook({
        config,
        kube,
        operator,
        logger,
        metrics,
        signal,
        isLeader: () => leading,
      });
    }
    options.onStarted?.({ operator, metrics, webhook });
    if (!config.leaderElect) {
      leading = true;
      metrics.isLeader.set({}, 1);
      operator.lead();
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      return 0;
    }
    const elector = new LeaderElector({
      kube,
      namespace: config.namespace,
      name: config.leaseName,
      identity: config.podName,
      logger,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
    });
    metrics.isLeader.set({}, 0);
    if (!await elector.acquire(signal)) return 0;
    leading = true;
    metrics.isLeader.set({}, 1);
    operator.lead();
    // Shutdown stops the queues first, then the Lease is released (hold() releases on abort).
    const stopping = new AbortController();
    signal.addEventListener("abort", async () => {
      await operator.stop();
      stopping.abort();
    }, { once: true });
    const result = await elector.hold(stopping.signal);
    leading = false;
    metrics.isLeader.set({}, 0);
    if (result === "lost") {
      logger.error("exiting after losing leadership", {});
      return 1;
    }
    return 0;
  } catch (error) {
    logger.error("operator failed", { error: messageOf(error) });
    return 1;
  } finally {
    await operator.stop().catch(() => {});
    await webhook?.close().catch(() => {});
    await ops?.finished;
    kube.close();
    logger.info("stopped", {});
  }
}

function namespacesByState(operator: Operator | undefined): [Labels, number][] {
  const counts = new Map<string, number>();
  for (const o of operator?.outcomes.values() ?? []) counts.set(o.state, (counts.get(o.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => [{ state }, n]);
}

/** From each QuayIntegration's `QuayReachable` condition in the caches (Unknown is left out). */
function quayReachability(operator: Operator | undefined): [Labels, number][] {
  if (!operator) return [];
  const out: [Labels, number][] = [];
  for (const object of [...operator.integrationsV1.values(), ...operator.integrationsLegacy.values()]) {
    const conditions =
      ((object.status ?? {}) as { conditions?: { type: string; status: string }[] }).conditions;
    const reachable = conditions?.find((c) => c.type === "QuayReachable")?.status;
    if (reachable !== "True" && reachable !== "False") continue;
    out.push([{ integration: object.metadata?.name ?? "" }, reachable === "True" ? 1 : 0]);
  }
  return out;
}
