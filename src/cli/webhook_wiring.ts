/**
 * @module
 * Starts the admission webhook for `run`, on every replica: the app answers from the operator's
 * caches (`operator_port.ts`), admissions feed the metrics, and the serving certificate comes from
 * a mounted directory (`files`, hot reload) or is self-managed (`self_managed.ts`: a CA and serving
 * certificate in a Secret, the caBundle kept in the MutatingWebhookConfiguration, renewal before
 * expiry through a seamless `rotate`). The certificate checks run as a controller that follows the
 * operator's leadership (`CertificateController`).
 */
import type { Config } from "../config.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Logger } from "../log.ts";
import type { Operator } from "../operator.ts";
import { isNotificationRequest, type NotificationFeature } from "../notifications/feature.ts";
import type { Metrics } from "../ops/metrics.ts";
import { createWebhookApp } from "../webhook/app.ts";
import { serveWebhookFromDirectory } from "../webhook/cert_dir.ts";
import { operatorAdmissionPort } from "../webhook/operator_port.ts";
import { CertificateController } from "../webhook/certificate_controller.ts";
import type { SelfManagedCertificates } from "../webhook/self_managed.ts";
import { serveWebhook, type WebhookServer } from "../webhook/server.ts";

/** A running webhook server. */
export interface WebhookHandle {
  serving(): boolean;
  close(): Promise<void>;
  /** The bound address. */
  readonly addr?: Deno.NetAddr;
  /** Self-managed mode: the certificates (tests force a rotation through `rotate()`). */
  readonly certificates?: SelfManagedCertificates;
}

/** Options for {@linkcode startWebhook}. */
export interface StartWebhookOptions {
  config: Config;
  kube: KubeClient;
  operator: Operator;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** Quay push notifications: its receiver is served on the same server, under its own path. */
  notifications?: NotificationFeature;
  /** Self-managed tuning (tests). */
  selfManaged?: {
    servingValidityMs?: number;
    checkIntervalMs?: number;
    /** Overrides the in-cluster detection. */
    outsideCluster?: boolean;
  };
}

function loopbackUrl(host: string, port: number, path: string): string {
  const h = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "[::1]" : host;
  return `https://${h}:${port}${path}`;
}

/** Starts the webhook per `config.webhookMode`. */
export async function startWebhook(options: StartWebhookOptions): Promise<WebhookHandle | undefined> {
  const { config, operator, metrics } = options;
  const logger = options.logger.with({ component: "webhook" });
  if (config.webhookMode === "off") return undefined;
  const app = createWebhookApp({
    admissionPort: operatorAdmissionPort({
      caches: operator.caches,
      settings: operator.settings,
      requestReconcile: (namespace) => operator.namespaceController.enqueue(namespace),
    }),
    path: config.webhookPath,
    logger,
    provisionBudgetMs: config.admissionBudgetMs,
    onAdmission: (outcome, durationMs) => metrics.observeAdmission(outcome, durationMs / 1000),
  });
  const notifications = options.notifications;
  const handler = notifications
    ? (request: Request) =>
      isNotificationRequest(request) ? notifications.handler(request) : app.fetch(request)
    : app.fetch;
  // A request must be answered within the admission budget plus time to send it (guard.ts).
  const guard = { requestTimeoutMs: config.admissionBudgetMs + 8_000 };
  const common = { handler, hostname: config.webhookHost, port: config.webhookPort, logger, guard };

  if (config.webhookMode === "files") {
    const server = await serveWebhookFromDirectory({ ...common, certDir: config.webhookCertDir });
    logger.info("webhook serving", { port: server.addr.port, certDir: config.webhookCertDir });
    return handleFor(server, undefined, undefined);
  }

  // self-managed. Loaded only here: its certificate library (@peculiar/x509) costs about 20 MiB of
  // resident memory, which the files and off modes never need.
  const { SelfManagedCertificates, servingNames } = await import("../webhook/self_managed.ts");
  const tuning = options.selfManaged ?? {};
  const outside = tuning.outsideCluster ??
    (config.webhookUrl !== undefined || options.kube.connection.inCluster !== true);
  const certificates = new SelfManagedCertificates({
    kube: options.kube,
    logger,
    namespace: config.namespace,
    secretName: config.webhookSecretName,
    configName: config.webhookConfigName,
    names: servingNames({
      serviceName: config.webhookServiceName,
      namespace: config.namespace,
      outsideCluster: outside,
      url: config.webhookUrl,
    }),
    isLeader: () => operator.leading,
    servingValidityMs: tuning.servingValidityMs,
    checkIntervalMs: tuning.checkIntervalMs,
  });
  const initial = await certificates.initial();
  const server = serveWebhook({
    ...common,
    certPem: initial.serving.certPem,
    keyPem: initial.serving.keyPem,
  });
  const url = config.webhookUrl ?? loopbackUrl(config.webhookHost, server.addr.port, config.webhookPath);
  // The configuration is created here only outside a cluster; inside, the deployment owns it.
  certificates.setManaged(outside ? { url, operatorNamespace: config.namespace } : undefined);
  logger.info("webhook serving", {
    port: server.addr.port,
    mode: "self-managed",
    url: outside ? url : undefined,
  });
  certificates.serveWith((cert, key) => server.rotate(cert, key));
  const checks = new CertificateController(certificates, {
    logger,
    observer: operator.queueObserver("webhook-certificate"),
  });
  checks.start();
  operator.follow(checks);
  return handleFor(server, certificates, () => checks.shutdown(1_000));
}

function handleFor(
  server: WebhookServer,
  certificates: SelfManagedCertificates | undefined,
  beforeClose: (() => Promise<void>) | undefined,
): WebhookHandle {
  let closed: Promise<void> | undefined;
  return {
    addr: server.addr,
    certificates,
    serving: () => closed === undefined,
    close() {
      closed ??= (async () => {
        await beforeClose?.();
        await server.close();
      })();
      return closed;
    },
  };
}
