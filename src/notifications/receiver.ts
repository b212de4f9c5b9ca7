/**
 * @module
 * The HTTPS endpoint Quay's notification worker POSTs `repo_push` events to, served next to the
 * admission webhook under `/quay-notifications/<integration>/<org>/<repo>/<token>`. Checks, in
 * order, each before any work the next needs:
 *
 * 1. POST on a well-formed path (405/404 otherwise);
 * 2. the token authenticates the repository for the integration (401 otherwise: an unknown
 *    integration, one without notifications, a missing or wrong token; nothing is read or done);
 * 3. the integration's deliveries stay within a token bucket (429 with `Retry-After`);
 * 4. the body fits the size cap (413) and is a `repo_push` event for that very repository (400);
 * 5. the port routes the event: imports are queued (202) or the repository is not one the
 *    integration manages (200 with the reason, no effect; a 2xx so Quay does not count a failure).
 *
 * Imports run after the answer (Quay gives up after 10 s and retries failures), so the answer says
 * what was queued, not what was imported.
 */
import { messageOf } from "../errors.ts";
import { readBody } from "../http/body.ts";
import { type Logger, silentLogger } from "../log.ts";
import { jsonStreamResponse } from "../http/json_response.ts";
import { parseReceiverPath, verifyRepositoryToken } from "./auth.ts";
import { parseRepoPush, type RepoPushEvent } from "./payload.ts";

/** What the receiver needs from the operator. */
export interface NotificationPort {
  /** The secret of the integration named so when its notifications are on; `undefined` otherwise. */
  secret(integration: string): string | undefined;
  /** Routes an authenticated, valid event. */
  deliver(integration: string, event: RepoPushEvent): DeliveryRouting;
}

/** What became of an event. */
export type DeliveryRouting =
  | {
    readonly kind: "queued";
    readonly namespace: string;
    readonly imageStream: string;
    readonly tags: readonly string[];
  }
  | { readonly kind: "ignored"; readonly reason: string };

/** Outcome of one request, for metrics. */
export type ReceiverOutcome =
  | "queued"
  | "ignored"
  | "unauthorized"
  | "invalid"
  | "too_large"
  | "throttled"
  | "not_found"
  | "error";

/** Options for {@linkcode createNotificationReceiver}. */
export interface NotificationReceiverOptions {
  port: NotificationPort;
  /** @default silentLogger */
  logger?: Logger;
  /** Largest body accepted. Quay's events are a few hundred bytes. @default 65536 */
  maxBodyBytes?: number;
  /** Sustained deliveries per second per integration. @default 50 */
  ratePerSecond?: number;
  /** Burst above the sustained rate per integration. @default 200 */
  burst?: number;
  /** Clock (tests). @default performance.now */
  now?: () => number;
  /** Called once per request. */
  onRequest?: (outcome: ReceiverOutcome) => void;
}

/** A token bucket per key: `take` is true while the key has tokens left. */
export class TokenBuckets {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(ratePerSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, burst);
    this.#now = now;
  }

  /** Takes one token of `key`; false when none is left. */
  take(key: string): boolean {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) / 1000 * this.#rate);
    b.at = now;
    this.#buckets.set(key, b);
    if (this.#buckets.size > 10_000) this.#buckets.clear(); // bounded memory; keys are integrations
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `key` has a token again. */
  retryAfterSeconds(key: string): number {
    const b = this.#buckets.get(key);
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate));
  }
}

function problem(
  status: number,
  reason: string,
  message: string,
  headers?: Record<string, string>,
): Response {
  const response = jsonStreamResponse({ status: "Failure", code: status, reason, message }, status);
  for (const [k, v] of Object.entries(headers ?? {})) response.headers.set(k, v);
  return response;
}

/** Creates the receiver's request handler. */
export function createNotificationReceiver(
  options: NotificationReceiverOptions,
): (request: Request) => Promise<Response> {
  const logger = options.logger ?? silentLogger;
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  const buckets = new TokenBuckets(options.ratePerSecond ?? 50, options.burst ?? 200, options.now);
  const logBudget = new TokenBuckets(1, 5, options.now);
  const record = (outcome: ReceiverOutcome) => {
    try {
      options.onRequest?.(outcome);
    } catch (error) {
      logger.error("notification observer failed", { error: messageOf(error) });
    }
  };

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = parseReceiverPath(url.pathname);
    if (!path) {
      record("not_found");
      await request.body?.cancel().catch(() => {});
      return problem(
        404,
        "NotFound",
        "not a notification path: /quay-notifications/<integration>/<org>/<repo>/<token>",
      );
    }
    if (request.method !== "POST") {
      record("not_found");
      await request.body?.cancel().catch(() => {});
      return problem(405, "MethodNotAllowed", "notifications are delivered with POST", { allow: "POST" });
    }
    const secret = options.port.secret(path.integration);
    if (
      secret === undefined ||
      !(await verifyRepositoryToken(secret, path.integration, path.org, path.repo, path.token))
    ) {
      record("unauthorized");
      await request.body?.cancel().catch(() => {});
      // The token never reaches the log; the integration and repository names are not secret. A
      // flood of bad requests must not flood the log: at most one line a second (bursts of 5).
      if (logBudget.take("unauthorized")) {
        logger.warn("notification refused: not authenticated", {
          integration: path.integration,
          repository: `${path.org}/${path.repo}`,
          configured: secret !== undefined,
        });
      }
      return problem(401, "Unauthorized", "the notification URL does not authenticate this repository");
    }
    if (!buckets.take(path.integration)) {
      record("throttled");
      await request.body?.cancel().catch(() => {});
      const retry = buckets.retryAfterSeconds(path.integration);
      return problem(429, "TooManyRequests", "too many deliveries for this integration", {
        "retry-after": String(retry),
      });
    }
    // Anyone who can reach the port gets this far only with a valid token; still, an oversized
    // body is not read on (cancel), and a body that is not UTF-8 is no event.
    const body = await readBody(request, { limit: maxBody, oversized: "cancel", utf8: "strict" });
    if (!body.ok && body.reason === "too_large") {
      record("too_large");
      return problem(413, "PayloadTooLarge", `body exceeds ${maxBody} bytes`);
    }
    const parsed = body.ok
      ? parseRepoPush(body.text, { namespace: path.org, name: path.repo })
      : { ok: false as const, reason: body.message };
    if (!parsed.ok) {
      record("invalid");
      if (logBudget.take("invalid")) {
        logger.warn("notification refused: invalid event", {
          integration: path.integration,
          repository: `${path.org}/${path.repo}`,
          reason: parsed.reason,
        });
      }
      return problem(400, "BadRequest", parsed.reason);
    }
    const routing = options.port.deliver(path.integration, parsed.event);
    if (routing.kind === "ignored") {
      record("ignored");
      logger.info("notification ignored", {
        integration: path.integration,
        repository: `${path.org}/${path.repo}`,
        reason: routing.reason,
      });
      return jsonStreamResponse({ status: "Ignored", message: routing.reason }, 200);
    }
    record("queued");
    logger.debug("notification queued imports", {
      integration: path.integration,
      imageStream: `${routing.namespace}/${routing.imageStream}`,
      tags: routing.tags,
    });
    return jsonStreamResponse({
      status: "Queued",
      imageStream: `${routing.namespace}/${routing.imageStream}`,
      tags: routing.tags,
    }, 202);
  }

  return async (request) => {
    try {
      return await handle(request);
    } catch (error) {
      record("error");
      logger.error("notification receiver failed", { error: messageOf(error) });
      return problem(500, "InternalError", "internal error");
    }
  };
}
