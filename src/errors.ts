/**
 * @module
 * Errors as values of three kinds, and the helpers the one retry policy (the work queue) reads.
 * Every error the operator raises is an `Error` subclass carrying its kind:
 *
 * - `transient`: the same request may succeed later (network, timeouts, 429, 5xx, a name Quay has
 *   not freed yet). Retried with backoff, never sooner than a `retryAfterMs` the server asked for.
 * - `conflict`: the object changed under us. The pass ends and the key runs again at once, against
 *   fresh caches, so the next decision is made on what is there now rather than patched up.
 * - `terminal`: retrying the same request cannot help (bad configuration, a rejected token, an
 *   invalid name). Reported; the key waits for a change, with a slow safety-net requeue.
 *
 * The API clients build these from real responses ({@linkcode QuayApiError},
 * {@linkcode KubeApiError}); the controllers never invent an HTTP status to steer a retry. Where a
 * controller itself finds a failure (a robot whose token cannot be read, a JSON Patch whose test
 * failed), it raises a kind ({@linkcode ConflictError}, {@linkcode TerminalError},
 * {@linkcode TransientError}) keeping the client's error as `cause`.
 */

/** What to do after a failure. */
export type RetryClass = "transient" | "conflict" | "terminal";

/** Options every operator error takes. */
export interface BridgeErrorOptions {
  readonly retry: RetryClass;
  /** A short CamelCase reason for conditions, Events and metrics. */
  readonly reason: string;
  /** The soonest a retry may run, when the server said so (`Retry-After`). */
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

/** Base class of the operator's own errors. */
export class BridgeError extends Error {
  /** How the work queue treats this failure. */
  readonly retry: RetryClass;
  /** A short CamelCase reason for conditions, Events and metrics. */
  readonly reason: string;
  /** The soonest a retry may run, if the server said so. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: BridgeErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retry = options.retry;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A configuration problem an admin must fix (bad CR, missing Secret, invalid name). */
export class ConfigError extends BridgeError {
  constructor(message: string, options: { reason: string; cause?: unknown }) {
    super(message, { retry: "terminal", ...options });
  }
}

/** A failure retrying cannot fix; the key waits for a change. */
export class TerminalError extends BridgeError {
  constructor(message: string, options: { reason: string; cause?: unknown }) {
    super(message, { retry: "terminal", ...options });
  }
}

/** A failure that may pass on its own; retried with backoff. */
export class TransientError extends BridgeError {
  constructor(message: string, options: { reason: string; retryAfterMs?: number; cause?: unknown }) {
    super(message, { retry: "transient", ...options });
  }
}

/** The object changed while it was written: end the pass and decide again on fresh state. */
export class ConflictError extends BridgeError {
  constructor(message: string, options: { reason?: string; cause?: unknown } = {}) {
    super(message, { retry: "conflict", reason: options.reason ?? "Conflict", cause: options.cause });
  }
}

/** Options of {@linkcode QuayApiError}. */
export interface QuayApiErrorOptions {
  /** HTTP status; 0 for transport errors. */
  readonly status: number;
  readonly route: string;
  readonly errorType?: string | undefined;
  readonly retryAfterSeconds?: number | undefined;
  /** Overrides the kind derived from the status (the client knows Quay's answers better). */
  readonly retry?: RetryClass | undefined;
  /** Overrides the reason derived from the status, e.g. `OrganizationNameNotFree`. */
  readonly reason?: string | undefined;
  readonly cause?: unknown;
}

/** The Quay API answered with an error status, or could not be reached. */
export class QuayApiError extends BridgeError {
  /** HTTP status; 0 for transport errors. */
  readonly status: number;
  /** Quay's `error_type` when the body carried one. */
  readonly errorType: string | undefined;
  /** The route template, e.g. `POST /api/v1/organization/`. */
  readonly route: string;
  /** Seconds the server asked us to wait (`Retry-After`). */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, options: QuayApiErrorOptions) {
    super(message, {
      retry: options.retry ?? quayRetryClass(options.status),
      reason: options.reason ?? quayReason(options),
      retryAfterMs: options.retryAfterSeconds === undefined ? undefined : options.retryAfterSeconds * 1000,
      cause: options.cause,
    });
    this.status = options.status;
    this.errorType = options.errorType;
    this.route = options.route;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The reason of a Quay error that means Quay refused the token itself. */
export const TOKEN_INVALID = "TokenInvalid";

function quayRetryClass(status: number): RetryClass {
  if (status === 0 || status === 429 || status === 408 || status >= 500) return "transient";
  return "terminal";
}

function quayReason(options: { status: number; errorType?: string | undefined }): string {
  if (options.status === 0) return "QuayUnreachable";
  if (options.status === 401) return TOKEN_INVALID;
  if (options.status === 403) {
    return options.errorType === "insufficient_scope" ? "QuayTokenScope" : "QuayForbidden";
  }
  if (options.status === 429) return "QuayRateLimited";
  if (options.status >= 500) return "QuayServerError";
  return "QuayRequestRejected";
}

/** True when `error` says Quay rejected the token (the credentials, not the request, are wrong). */
export function isTokenRejected(error: unknown): error is QuayApiError {
  return error instanceof QuayApiError && error.reason === TOKEN_INVALID;
}

/** True when `error` says Quay could not be reached or answered with a server-side failure. */
export function isQuayUnavailable(error: unknown): error is QuayApiError {
  return error instanceof QuayApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
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

/** The soonest a retry of `error` may run, in milliseconds (0 when the server named no time). */
export function retryAfterMsOf(error: unknown): number {
  return error instanceof BridgeError ? error.retryAfterMs ?? 0 : 0;
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
