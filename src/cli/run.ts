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
import { NotificationFeature } from "../notifications/feature.ts";
import { Operator } from "../operator.ts";
import { rotatedAtOf } from "../controller/rotation_plan.ts";
import type { SecretView } from "../controller/views.ts";
import { leftBehindCounts } from "../controller/organization_collector.ts";
import { LeaderElector } from "../ops/leader.ts";
import { type Labels, Metrics } from "../ops/metrics.ts";
import { createOpsApp } from "../ops/server.ts";
import { VERSION } from "../version.ts";
import { configureProxy } from "../http/transport.ts";
import { readCertificateDirectory } from "../webhook/cert_dir.ts";
import { CertificateError } from "../webhook/server.ts";
import {
  certDirFailure,
  kubeconfigFailure,
  listenFailure,
  permissionFailure,
  probeListen,
  STARTUP_EXIT_CODE,
  StartupError,
} from "./startup.ts";
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

/**
 * Runs until `signal` aborts (exit code 0) or leadership is lost (exit code 1). A failure before the
 * operator runs (see `startup.ts`) is logged as one line naming the cause and the fix, with exit
 * code 2.
 */
export async function runOperator(options: RunOptions): Promise<number> {
  const { config, logger } = options;
  try {
    return await runStarted(options);
  } catch (error) {
    const failure = error instanceof StartupError ? error : permissionFailure(error);
    if (!failure) throw error;
    logger.error("cannot start", { error: failure.message, fix: failure.fix, command: config.command });
    return STARTUP_EXIT_CODE;
  }
}

async function runStarted(options: RunOptions): Promise<number> {
  const { config, logger, signal } = options;
  // The computed gauges read the operator, which is created below with observers that use `metrics`.
  const started: { operator?: Operator } = {};
  const metrics = new Metrics({
    namespaces: () => namespacesByState(started.operator),
    quayReachable: () => quayReachability(started.operator),
    credentialAge: () => credentialAges(started.operator?.secrets.values() ?? [], Date.now()),
    leftBehind: () =>
      started.operator
        ? leftBehindCounts(started.operator.registry).map((c) => [{ integration: c.integration }, c.count])
        : [],
  });
  configureProxy(config.proxy);
  let connection;
  try {
    connection = await loadKubeConnection({
      kubeconfig: config.kubeconfig,
      context: config.context,
      environment: config.kubeEnvironment,
    });
  } catch (error) {
    throw kubeconfigFailure(error, config.kubeconfig);
  }
  const opsWhere = {
    host: config.opsHost,
    port: config.opsPort,
    portFlag: "--ops-port",
    hostFlag: "--ops-host",
    what: "ops server",
  };
  const webhookWhere = {
    host: config.webhookHost,
    port: config.webhookPort,
    portFlag: "--webhook-port",
    hostFlag: "--webhook-host",
    what: "admission webhook",
  };
  // Everything the webhook needs from the machine is checked before the caches sync, so a busy port
  // or a missing certificate ends the process within a second, not after the first list.
  if (config.webhookMode !== "off") probeListen(webhookWhere);
  if (config.webhookMode === "files") {
    await readCertificateDirectory(config.webhookCertDir).catch((error) => {
      throw certDirFailure(error, config.webhookCertDir);
    });
  }
  const kube = new KubeClient(connection, {
    userAgent: `quay-bridge/${VERSION}`,
    onCall: ({ verb, resource, status }) =>
      metrics.kubeRequests.inc({ verb, resource, code: String(status) }),
  });
  const queueObserver = (name: string) => ({
    reconciled: ({ durationMs, error }: { durationMs: number; error?: unknown }) => {
      metrics.reconciles.inc({ queue: name, result: error ? "error" : "success" });
      if (error) metrics.reconcileErrors.inc({ queue: name });
      metrics.reconcileDuration.observe({ queue: name }, durationMs / 1000);
    },
    depth: (pending: number) => metrics.queueDepth.set({ queue: name }, pending),
  });
  let notifications: NotificationFeature | undefined = undefined;
  const operator = new Operator({
    kube,
    logger,
    onCacheChange: (change) => notifications?.onCacheChange(change),
    settings: {
      resyncMs: config.resyncMs,
      audit: {
        intervalMs: config.auditIntervalMs,
        resyncMs: config.auditedResyncMs,
        namespace: config.namespace,
      },
      deletionBudgetMs: config.deletionBudgetMs,
      concurrency: config.concurrency,
      quay: { timeoutMs: config.quayTimeoutMs },
      instance: config.podName,
    },
    observers: {
      onQuayCall: ({ route, status, durationMs }) => {
        metrics.quayRequests.inc({ route, code: String(status) });
        metrics.quayLatency.observe({ route }, durationMs / 1000);
      },
      queue: queueObserver,
    },
  });
  started.operator = operator;
  // Quay push notifications: the receiver is served by the webhook server (docs/notifications.md).
  notifications = new NotificationFeature({
    kube,
    logger,
    events: operator.events,
    registry: operator.registry,
    namespaces: () => operator.namespaces,
    imageStreams: () => operator.imageStreams,
    operatorNamespace: config.namespace,
    resyncMs: config.resyncMs,
    queueObserver,
    onRequest: (result) => metrics.notificationDeliveries.inc({ result }),
  });

  let webhook: WebhookHandle | undefined;
  let ops: Deno.HttpServer | undefined;
  try {
    ops = config.opsPort > 0
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
  } catch (error) {
    kube.close();
    throw listenFailure(error, opsWhere);
  }

  try {
    logger.info("starting", { version: VERSION, namespace: config.namespace, identity: config.podName });
    await operator.start();
    await notifications.start(signal);
    if (config.webhookMode !== "off") {
      try {
        webhook = await startWebhook({
          config,
          kube,
          operator,
          logger,
          metrics,
          signal,
          notifications,
        });
      } catch (error) {
        throw error instanceof CertificateError && config.webhookMode === "files"
          ? certDirFailure(error, config.webhookCertDir)
          : isListenError(error)
          ? listenFailure(error, webhookWhere)
          : error;
      }
    }
    options.onStarted?.({ operator, metrics, webhook });
    if (!config.leaderElect) {
      metrics.isLeader.set({}, 1);
      operator.lead();
      notifications.lead();
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
    metrics.isLeader.set({}, 1);
    operator.lead();
    notifications.lead();
    // Shutdown stops the queues first, then the Lease is released (hold() releases on abort).
    const stopping = new AbortController();
    signal.addEventListener("abort", async () => {
      await Promise.all([operator.stop(), notifications.stop()]);
      stopping.abort();
    }, { once: true });
    const result = await elector.hold(stopping.signal);
    metrics.isLeader.set({}, 0);
    if (result === "lost") {
      logger.error("exiting after losing leadership", {});
      return 1;
    }
    return 0;
  } catch (error) {
    if (error instanceof StartupError) throw error;
    logger.error("operator failed", { error: messageOf(error) });
    return 1;
  } finally {
    await notifications.stop().catch(() => {});
    await operator.stop().catch(() => {});
    await webhook?.close().catch(() => {});
    // After a start-up failure the signal never aborts: the ops server is shut down here.
    await ops?.shutdown().catch(() => {});
    await ops?.finished;
    kube.close();
    logger.info("stopped", {});
  }
}

/** A failure of `Deno.serve`/`Deno.listen` itself (as opposed to a certificate or API problem). */
function isListenError(error: unknown): boolean {
  return error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.AddrNotAvailable || error instanceof Deno.errors.NotCapable;
}

function namespacesByState(operator: Operator | undefined): [Labels, number][] {
  const counts = new Map<string, number>();
  for (const o of operator?.outcomes.values() ?? []) counts.set(o.state, (counts.get(o.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => [{ state }, n]);
}

/** The oldest robot token's age per namespace, from the Secrets' `credentials-rotated-at`. */
function credentialAges(secrets: Iterable<SecretView>, now: number): [Labels, number][] {
  const oldest = new Map<string, number>();
  for (const secret of secrets) {
    const at = rotatedAtOf(secret);
    if (at === undefined) continue;
    oldest.set(secret.namespace, Math.min(oldest.get(secret.namespace) ?? at, at));
  }
  return [...oldest].map(([namespace, at]) => [{ namespace }, Math.max(0, Math.round((now - at) / 1000))]);
}

/** Per QuayIntegration: the outcome of its Quay's last call, else its `QuayReachable` condition. */
function quayReachability(operator: Operator | undefined): [Labels, number][] {
  return (operator?.quayReachability() ?? []).map((
    r,
  ) => [{ integration: r.integration }, r.reachable ? 1 : 0]);
}
