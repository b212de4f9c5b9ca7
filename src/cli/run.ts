/**
 * @module
 * `quay-bridge run`: the operator process. Loads the Kubernetes connection, starts the caches, the
 * operations server and the admission webhook on every replica, and the reconcilers on the elected
 * leader only. One AbortSignal drives shutdown: the queues get a short grace for their in-flight
 * work, the Lease is released, the servers drain — all within {@linkcode SHUTDOWN_BUDGET_MS}, after
 * which `run` returns whatever is still pending (a hung request must not keep a pod past its grace
 * period holding the Lease). Losing the Lease ends the process the same way (its caches and
 * workers may be stale), as controller-runtime does; `/healthz` fails from the moment renewals
 * stall, and the Deployment restarts it as a standby. Both HTTP servers sit behind a connection
 * guard (`../http/guard.ts`): `Deno.serve` has no read timeouts.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { guardConnections } from "../http/guard.ts";
import { KubeClient, type KubeConnection, loadKubeConnection } from "../kube/client.ts";
import { NAMESPACES } from "../kube/resources.ts";
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
import {
  certDirFailure,
  kubeconfigFailure,
  listenFailure,
  permissionFailure,
  probeListen,
  STARTUP_EXIT_CODE,
  StartupError,
} from "./startup.ts";
import type { WebhookHandle } from "./webhook_wiring.ts";

/** From the shutdown signal (or the loss of the Lease) to `run` returning, at most. */
export const SHUTDOWN_BUDGET_MS = 1_200;
/** Of that, how long in-flight reconciles may finish before their signal aborts. */
const RECONCILE_GRACE_MS = 400;
/** Of that, what is kept for releasing the Lease. */
const RELEASE_RESERVE_MS = 500;

/** Resolves when `work` settles or after `ms`, whichever is first; true when it settled. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), Math.max(0, ms)));
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves true when `work` settles, false as soon as `signal` aborts: start-up steps that wait on
 * the cluster (the first list of a cache whose API answers 404 retries forever) must not hold a
 * shutdown. A rejection of `work` is passed on.
 */
async function unlessAborted(work: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work.then(() => true), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

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
  const { logger, signal } = options;
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
  configureProxy(options.config.proxy);
  let connection;
  try {
    connection = await loadKubeConnection({
      kubeconfig: options.config.kubeconfig,
      context: options.config.context,
      environment: options.config.kubeEnvironment,
    });
  } catch (error) {
    throw kubeconfigFailure(error, options.config.kubeconfig);
  }
  const config = withNamespace(options.config, connection);
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
    const { readCertificateDirectory } = await import("../webhook/cert_dir.ts");
    await readCertificateDirectory(config.webhookCertDir).catch((error) => {
      throw certDirFailure(error, config.webhookCertDir);
    });
  }
  const kube = new KubeClient(connection, {
    userAgent: `quay-bridge/${VERSION}`,
    onCall: ({ verb, resource, status }) =>
      metrics.kubeRequests.inc({ verb, resource, code: String(status) }),
  });
  try {
    await requireNamespace(kube, config.namespace);
  } catch (error) {
    kube.close();
    throw error;
  }
  const queueObserver = (name: string) => ({
    reconciled: ({ durationMs, error }: { durationMs: number; error?: unknown }) => {
      metrics.reconciles.inc({ queue: name, result: error ? "error" : "success" });
      if (error) metrics.reconcileErrors.inc({ queue: name });
      metrics.reconcileDuration.observe({ queue: name }, durationMs / 1000);
    },
    depth: (pending: number) => metrics.queueDepth.set({ queue: name }, pending),
  });
  const operator = new Operator({
    kube,
    logger,
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
      policy: { operatorNamespace: config.namespace, credentialsNamespaces: config.credentialsNamespaces },
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
  const notifications = new NotificationFeature({
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
  operator.onCacheChange((change) => notifications.onCacheChange(change));
  // Pushes the audit log names take the receiver's import path, with or without notifications.
  operator.onAuditPush((key, pushes) => notifications.importPushed(key, pushes));

  let webhook: WebhookHandle | undefined;
  let elector: LeaderElector | undefined;
  // Every shutdown step is bounded by one deadline, set when shutdown starts.
  let deadline = Infinity;
  const left = () => deadline - performance.now();
  const startShutdown = () => {
    if (deadline === Infinity) deadline = performance.now() + SHUTDOWN_BUDGET_MS;
  };
  signal.addEventListener("abort", startShutdown, { once: true });
  // The ops server outlives the operator's own shutdown so /healthz can report it; it listens on
  // loopback behind the guard, which holds the public port.
  const opsStop = new AbortController();
  let ops: Deno.HttpServer<Deno.NetAddr> | undefined;
  let opsGuard: ReturnType<typeof guardConnections> | undefined;
  try {
    ops = config.opsPort > 0
      ? Deno.serve(
        {
          port: 0,
          hostname: "127.0.0.1",
          signal: AbortSignal.any([signal, opsStop.signal]),
          onListen: () => {},
        },
        createOpsApp(metrics, {
          healthy: () => elector?.health() ?? { ok: true },
          ready: () => {
            if (!operator.cachesReady) return { ok: false, reason: "caches not synced" };
            if (webhook && !webhook.serving()) return { ok: false, reason: "webhook not serving" };
            return { ok: true };
          },
        }).fetch,
      )
      : undefined;
    const inner = ops;
    opsGuard = inner
      ? guardConnections({
        hostname: config.opsHost,
        port: config.opsPort,
        targetPort: () => inner.addr.port,
        requestTimeoutMs: 10_000,
        onClose: (reason) => logger.debug("ops connection closed by the guard", { reason }),
      })
      : undefined;
    if (opsGuard) logger.info("ops server listening", { port: opsGuard.addr.port });
  } catch (error) {
    opsStop.abort();
    kube.close();
    throw listenFailure(error, opsWhere);
  }

  try {
    logger.info("starting", { version: VERSION, namespace: config.namespace, identity: config.podName });
    if (!await unlessAborted(operator.start(), signal)) return 0;
    if (!await unlessAborted(notifications.start(signal), signal)) return 0;
    if (config.webhookMode !== "off") {
      // Loaded only when on: the webhook's certificate handling (`node:crypto`) and its Hono app
      // would otherwise stay resident in a process that never serves them.
      const [{ startWebhook }, { CertificateError }] = await Promise.all([
        import("./webhook_wiring.ts"),
        import("../webhook/server.ts"),
      ]);
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
    elector = new LeaderElector({
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
      // The webhook drains meanwhile (its grace period runs alongside).
      const closing = webhook?.close().catch(() => {});
      await settlesWithin(
        Promise.all([operator.stop(RECONCILE_GRACE_MS), notifications.stop(RECONCILE_GRACE_MS), closing]),
        left() - RELEASE_RESERVE_MS,
      );
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
    startShutdown();
    const cleanup = Promise.all([
      notifications.stop(RECONCILE_GRACE_MS).catch(() => {}),
      operator.stop(RECONCILE_GRACE_MS).catch(() => {}),
      webhook?.close().catch(() => {}),
    ]);
    if (!await settlesWithin(cleanup, left() - 100)) {
      logger.warn("shutdown budget spent; leaving the rest to process exit", {
        budgetMs: SHUTDOWN_BUDGET_MS,
      });
    }
    // After a start-up failure the signal never aborts: the ops server is shut down here.
    opsStop.abort();
    if (ops) await settlesWithin(ops.finished, left());
    if (opsGuard) await settlesWithin(opsGuard.close(Math.max(0, left() - 50)), left());
    kube.close();
    logger.info("stopped", {});
  }
}

/**
 * The operator's namespace: as given, else (outside a cluster) the kubeconfig context's, as kubectl
 * takes it, else the default.
 */
function withNamespace(config: Config, connection: KubeConnection): Config {
  if (config.namespaceGiven || !connection.namespace) return config;
  return Object.freeze({ ...config, namespace: connection.namespace });
}

/**
 * Stops at once when the API server says the operator's namespace does not exist (its Lease and
 * webhook Secret live there; without it the operator would only log failed Lease updates). Other
 * failures are left to the retrying code paths.
 */
async function requireNamespace(kube: KubeClient, namespace: string): Promise<void> {
  let found: unknown;
  try {
    found = await kube.get(NAMESPACES, namespace);
  } catch {
    return;
  }
  if (found) return;
  throw new StartupError(
    `namespace "${namespace}" not found: the operator keeps its Lease and webhook Secret there`,
    `create it, or name another with --namespace (or a namespace in the kubeconfig context)`,
  );
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
