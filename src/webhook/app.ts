/**
 * @module
 * The admission webhook's HTTP face: a Hono app serving `POST /admissionwebhook` (path
 * configurable). Bodies are read with a size cap, decisions come from `admission.ts`, and every
 * response body is a single-chunk `ReadableStream`: `Deno.serve` over TLS with HTTP/1.1 (how
 * kube-apiserver calls webhooks) stalls ~44 ms on string bodies (docs/runtime.md).
 */
import { Hono } from "hono";
import { jsonStreamResponse, jsonTextResponse } from "../http/json_response.ts";
import { messageOf } from "../errors.ts";
import { readBody } from "../http/body.ts";
import { type Logger, silentLogger } from "../log.ts";
import {
  type AdmissionContext,
  type AdmissionOutcome,
  type AdmissionVerdict,
  decideAdmission,
  sharedProvisioner,
} from "./admission.ts";
import type { AdmissionPort } from "./port.ts";
import { admissionReviewResponse, parseAdmissionReview, type ParsedReview } from "./review.ts";

export { jsonStreamResponse, jsonTextResponse };

/** The upstream operator's webhook path. */
export const DEFAULT_WEBHOOK_PATH = "/admissionwebhook";
/** Largest body read: 3 MiB, etcd's object limit; a bigger AdmissionReview cannot be a real Build. */
export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Default wait for on-demand provisioning: most of kube-apiserver's 10 s default webhook timeout. */
export const DEFAULT_PROVISION_BUDGET_MS = 7_000;

/** At most one warning per this interval about rejected requests. */
const REJECTION_WARN_INTERVAL_MS = 60_000;

/** Beyond this an oversized body is no longer drained but the connection is given up. */
const DRAIN_LIMIT_BYTES = 32 * 1024 * 1024;

/** Options for {@linkcode createWebhookApp}. */
export interface WebhookAppOptions {
  /** Where namespace targets come from (the operator's caches). */
  admissionPort: AdmissionPort;
  /** Request path. @default "/admissionwebhook" */
  path?: string;
  /** @default silentLogger */
  logger?: Logger;
  /** Longest wait for on-demand provisioning, in ms; keep it under the webhook's timeoutSeconds. @default 7000 */
  provisionBudgetMs?: number;
  /** Bodies above this many bytes get HTTP 400. @default 3 MiB */
  maxBodyBytes?: number;
  /** Called once per request to the webhook path with its outcome and duration, for metrics. */
  onAdmission?: (outcome: AdmissionOutcome, durationMs: number) => void;
}

function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code };
}

/**
 * Creates the webhook app. Every request to the path gets an AdmissionReview answer echoing its
 * uid, or HTTP 400 when it carries no answerable AdmissionReview; nothing a client sends makes it
 * throw.
 */
export function createWebhookApp(options: WebhookAppOptions): Hono {
  const logger = options.logger ?? silentLogger;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const context: AdmissionContext = {
    port: options.admissionPort,
    provisioner: sharedProvisioner(options.admissionPort),
    provisionBudgetMs: options.provisionBudgetMs ?? DEFAULT_PROVISION_BUDGET_MS,
  };
  const onAdmission = options.onAdmission;

  function record(outcome: AdmissionOutcome, started: number): number {
    const durationMs = performance.now() - started;
    if (onAdmission !== undefined) {
      try {
        onAdmission(outcome, durationMs);
      } catch (error) {
        logger.error("admission observer failed", { error });
      }
    }
    return durationMs;
  }

  // The port answers anyone who can reach it, unauthenticated: an invalid request is counted
  // (onAdmission "invalid") and logged at debug level, with at most one warning a minute saying
  // how many there were, so a flood cannot fill the log.
  let rejectedSinceWarn = 0;
  let lastWarnAt = -Infinity;
  function invalid(
    message: string,
    started: number,
    length: number | undefined,
    status: 400 | 415 = 400,
  ): Response {
    const durationMs = record("invalid", started);
    logger.debug("admission request rejected", { reason: message, length, durationMs });
    rejectedSinceWarn++;
    if (started - lastWarnAt >= REJECTION_WARN_INTERVAL_MS) {
      logger.warn("admission requests rejected", {
        count: rejectedSinceWarn,
        last: message,
        note: "invalid AdmissionReviews; details at debug level",
      });
      rejectedSinceWarn = 0;
      lastWarnAt = started;
    }
    return jsonStreamResponse(
      statusBody(status, status === 415 ? "UnsupportedMediaType" : "BadRequest", message),
      status,
    );
  }

  function answer(review: ParsedReview, verdict: AdmissionVerdict, started: number): Response {
    const durationMs = record(verdict.outcome, started);
    const fields = {
      uid: review.uid,
      namespace: verdict.namespace,
      name: verdict.name,
      outcome: verdict.outcome,
      reason: verdict.reason,
      durationMs,
    };
    // Routine answers are debug: at admission rates a line each would flood the log, and the Build's
    // annotations and onAdmission metrics already record them. Denials and warnings are actionable.
    if (verdict.outcome === "error") logger.error("admission", fields);
    else if (verdict.outcome === "denied" || verdict.answer.warnings !== undefined) {
      logger.info("admission", fields);
    } else logger.debug("admission", fields);
    return jsonTextResponse(admissionReviewResponse(review, verdict.answer));
  }

  const app = new Hono();
  app.post(options.path ?? DEFAULT_WEBHOOK_PATH, async (c) => {
    const started = performance.now();
    const type = c.req.header("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type.trim())) {
      await c.req.raw.body?.cancel().catch(() => {});
      return invalid(
        `Content-Type must be application/json, got "${type.slice(0, 100)}"`,
        started,
        undefined,
        415,
      );
    }
    // An oversized body is drained so kube-apiserver reads the 400 rather than a reset; a client
    // gone mid-body is answered anyway so the outcome is counted.
    const body = await readBody(c.req.raw, {
      limit: maxBodyBytes,
      oversized: { drainUpTo: DRAIN_LIMIT_BYTES },
      utf8: "replace",
    });
    if (!body.ok) return invalid(body.message, started, undefined);
    const parsed = parseAdmissionReview(body.text);
    if (!parsed.ok) return invalid(parsed.message, started, body.text.length);
    const review = parsed.review;
    const decided = decideAdmission(review.request, context);
    const verdict = decided instanceof Promise ? await decided : decided;
    return answer(review, verdict, started);
  });
  app.notFound(() => jsonStreamResponse(statusBody(404, "NotFound", "not found"), 404));
  app.onError((error) => {
    logger.error("webhook request failed", { error: messageOf(error) });
    return jsonStreamResponse(statusBody(500, "InternalError", "internal error"), 500);
  });
  return app;
}
