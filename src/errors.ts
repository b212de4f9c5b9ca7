/**
 * @module
 * Typed errors and the one error policy that decides what happens after a failure. Every error the
 * operator raises is an `Error` subclass carrying what a retry decision needs: transient failures
 * (network, timeouts, 429, 5xx) back off and retry; conflicts retry at once against fresh state;
 * terminal failures (bad configuration, invalid names, 4xx) are reported and wait for a change.
 */

/** What to do after a failure. */
export type RetryClass = "transient" | "conflict" | "terminal";

/** Base class of the operator's own errors. */
export class BridgeError extends Error {
  /** How the work queue treats this failure. */
  readonly retry: RetryClass;
  /** A short CamelCase reason for conditions, Events and metrics. */
  readonly reason: string;
  constructor(message: string, options: { retry: RetryClass; reason: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retry = options.retry;
    this.reason = options.reason;
  }
}

/** A configuration problem an admin must fix (bad CR, missing Secret, invalid name). */
export class ConfigError extends BridgeError {
  constructor(message: string, options: { reason: string; cause?: unknown }) {
    super(message, { retry: "terminal", ...options });
  }
}

/** The Quay API answered with an error status, or could not be reached. */
export class QuayApiError extends BridgeError {
  /** HTTP status; 0 for transport errors. */
  readonly status: number;
  /** Quay's `error_type` when the body carried one. */
  readonly errorType: string | undefined;
  /** The route template, e.g. `POST /api/v1/organization/`. */
  readonly route: string;
  /** Seconds the server asked us to wait (429/503 `Retry-After`). */
  readonly retryAfterSeconds: number | undefined;
  constructor(
    message: string,
    options: {
      status: number;
      route: string;
      errorType?: string | undefined;
      retryAfterSeconds?: number | undefined;
      /** Overrides the class the status implies (e.g. a 400 that only means "not yet"). */
      retry?: RetryClass | undefined;
      /** Overrides the reason the status implies. */
      reason?: string | undefined;
      cause?: unknown;
    },
  ) {
    super(message, {
      retry: options.retry ?? quayRetryClass(options.status),
      reason: options.reason ?? quayReason(options),
      cause: options.cause,
    });
    this.status = options.status;
    this.errorType = options.errorType;
    this.route = options.route;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

function quayRetryClass(status: number): RetryClass {
  if (status === 0 || status === 429 || status === 408 || status >= 500) return "transient";
  return "terminal";
}

function quayReason(options: { status: number; errorType?: string | undefined }): string {
  if (options.status === 0) return "QuayUnreachable";
  if (options.status === 401) return "QuayTokenInvalid";
  if (options.status === 403) {
    return options.errorType === "insufficient_scope" ? "QuayTokenScope" : "QuayForbidden";
  }
  if (options.status === 429) return "QuayRateLimited";
  if (options.status >= 500) return "QuayServerError";
  return "QuayRequestRejected";
}

/** The Kubernetes API answered with an error Status, or could not be reached. */
export class KubeApiError extends BridgeError {
  /** HTTP status; 0 for transport errors. */
  readonly status: number;
  /** The Status `reason` (NotFound, Conflict, Forbidden …). */
  readonly statusReason: string;
  constructor(message: string, options: { status: number; statusReason?: string; cause?: unknown }) {
    super(message, {
      retry: kubeRetryClass(options.status),
      reason: options.status === 0 ? "KubeUnreachable" : `Kube${options.statusReason || options.status}`,
      cause: options.cause,
    });
    this.status = options.status;
    this.statusReason = options.statusReason ?? "";
  }
}

function kubeRetryClass(status: number): RetryClass {
  if (status === 409) return "conflict";
  if (status === 0 || status === 429 || status >= 500) return "transient";
  // 403 and 404 on writes usually mean "not yet": RBAC being applied, a namespace being created.
  if (status === 403 || status === 404) return "transient";
  return "terminal";
}

/** Classifies any thrown value. Unknown errors are treated as transient: retrying is the safe default. */
export function retryClassOf(error: unknown): RetryClass {
  if (error instanceof BridgeError) return error.retry;
  return "transient";
}

/** A short reason for any thrown value. */
export function reasonOf(error: unknown): string {
  if (error instanceof BridgeError) return error.reason;
  return "InternalError";
}

/** A message for any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Options for {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** First delay. @default 500 */
  baseMs?: number;
  /** Upper bound. @default 300_000 */
  maxMs?: number;
  /** Random source in [0, 1), for tests. @default Math.random */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: a delay drawn from [base·2^(n-1)/2, base·2^(n-1)], capped.
 * `attempt` counts from 1.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 300_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const random = options.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
