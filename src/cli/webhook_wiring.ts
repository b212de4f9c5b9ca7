/**
 * @module
 * Starts the admission webhook for `run` (placeholder until the webhook module lands).
 */
import type { Config } from "../config.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Logger } from "../log.ts";
import type { Operator } from "../operator.ts";
import type { Metrics } from "../ops/metrics.ts";

/** A running webhook server. */
export interface WebhookHandle {
  serving(): boolean;
  close(): Promise<void>;
}

/** Options for {@linkcode startWebhook}. */
export interface StartWebhookOptions {
  config: Config;
  kube: KubeClient;
  operator: Operator;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  isLeader: () => boolean;
}

/** Starts the webhook per `config.webhookMode`. */
export function startWebhook(options: StartWebhookOptions): Promise<WebhookHandle | undefined> {
  options.logger.warn("webhook not available in this build", {});
  return Promise.resolve(undefined);
}
