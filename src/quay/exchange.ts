/**
 * @module
 * The HTTP exchange of the Quay client: one request and its answer, turned into typed data or a
 * {@linkcode QuayApiError} built from the real response. It verifies TLS unless told otherwise, caps
 * concurrent requests and bounds each request with a timeout. It retries only what is cheap to
 * retry at once (a quick 5xx, a dropped connection: up to 3 attempts within about a second); a
 * timeout or a longer `Retry-After` is thrown at once with `retryAfterSeconds`, and the caller's
 * work queue decides when to try again, so long waits never stack. A 429 (or 503) with
 * `Retry-After` pauses every call until then, and the rate adapts (`pacing.ts`).
 *
 * Quay treats a bad, expired or revoked token as anonymous, not refused: writes answer 403
 * `{"error": "CSRF token was invalid or missing."}` (read as `TokenInvalid`), and some reads answer
 * the public view. The exchange remembers when Quay last accepted the token on a route it never
 * serves anonymously, so the API calls can tell whether an answer may be anonymous. The token is
 * read through a function on every request, so a rotated token is used at once; it never appears
 * in errors or logs.
 */
import { backoffDelay, QuayApiError, type RetryClass } from "../errors.ts";
import {
  createFetchTransport,
  createInsecureTransport,
  type HttpTransport,
  TransportError,
} from "../http/transport.ts";
import { withDeadline } from "../deadline.ts";
import { sleepUnlessAborted } from "../sleep.ts";
import { AdaptiveRate, Semaphore } from "./pacing.ts";
import { QuayReason } from "./reasons.ts";

/** An answer that could be anonymous is trusted when the token was accepted this recently. */
const TOKEN_PROOF_MS = 10_000;

/** Called after every HTTP exchange (metrics). `status` is 0 for transport errors. */
export type QuayCallObserver = (call: { route: string; status: number; durationMs: number }) => void;

/** Options for {@linkcode QuayExchange} (and `QuayClient`, which passes them on). */
export interface QuayExchangeOptions {
  /** `https://host[:port]`. */
  baseUrl: string;
  /** Returns the OAuth token to send; read on every request. */
  token: () => string;
  /** Skip certificate verification. @default false */
  insecure?: boolean;
  /** PEM CA certificates trusted besides the system store. */
  caBundle?: string | undefined;
  /** Per-request timeout. @default 10_000 */
  timeoutMs?: number;
  /**
   * Attempts per call for transient failures that are cheap to retry at once: a 5xx or a dropped
   * connection answered quickly. Timeouts and any `Retry-After` longer than `maxRetryDelayMs` are
   * never waited out here: they are thrown at once, and the work queue, which retries whole
   * reconciles, decides when to try again (so waits never stack). @default 3
   */
  maxAttempts?: number;
  /** First retry delay. @default 200 */
  retryBaseMs?: number;
  /** Longest wait between attempts of one call; a longer `Retry-After` is thrown instead. @default 1_000 */
  maxRetryDelayMs?: number;
  /** Concurrent requests at most. @default 8 */
  concurrency?: number;
  /** Observer of each exchange. */
  onCall?: QuayCallObserver;
  /** A transport to use instead of the default (tests). */
  transport?: HttpTransport;
  /** Aborts waits and in-flight requests (shutdown). */
  signal?: AbortSignal;
  /** Clock for pacing (tests). @default performance.now */
  now?: () => number;
}

/** One request: `route` is its template, for errors and metrics. */
export interface CallSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  route: string;
  body?: unknown;
  /** Statuses returned to the caller rather than thrown. */
  accept?: readonly number[];
}

/** An answer returned to the caller (a 2xx, or a status it accepts). */
export interface CallResult {
  status: number;
  body: unknown;
  detail: string;
  errorType?: string;
  /** The body was HTML or otherwise not JSON. */
  parsed: boolean;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

/** Quay's error text: problem bodies use `detail`/`error_message`, Flask aborts `message`, the CSRF check `error`. */
function errorDetail(body: unknown): string {
  if (!body || typeof body !== "object") return "";
  const b = body as Record<string, unknown>;
  for (const key of ["detail", "error_message", "message", "error"]) {
    const value = b[key];
    if (typeof value === "string" && value !== "") return value.trim();
    if (value && typeof value === "object") return JSON.stringify(value);
  }
  return "";
}

const CSRF_REFUSAL = /CSRF token/i;

/** A {@linkcode QuayApiError} for `route`: "Quay answered <status>" (or "Cannot reach Quay") and the detail. */
export function quayError(
  status: number,
  route: string,
  detail: string,
  more: {
    errorType?: string | undefined;
    retryAfter?: number | undefined;
    retry?: RetryClass;
    reason?: string;
  } = {},
): QuayApiError {
  const what = status === 0 ? "Cannot reach Quay" : `Quay answered ${status}`;
  return new QuayApiError(`${what} for ${route}${detail ? `: ${detail}` : ""}`, {
    status,
    route,
    errorType: more.errorType,
    retryAfterSeconds: more.retryAfter,
    retry: more.retry,
    reason: more.reason,
  });
}

/** The requests of one client to one Quay instance with one token. */
export class QuayExchange {
  readonly #options: QuayExchangeOptions;
  readonly #transport: HttpTransport;
  readonly #ownsTransport: boolean;
  readonly #slots: Semaphore;
  readonly #pace: AdaptiveRate;
  readonly #now: () => number;
  /** Transport errors that were not timeouts (connection closed, reset, refused). */
  readonly #stale = new WeakSet<QuayApiError>();
  /** Requests that got no answer in time: retrying at once would only double the wait. */
  readonly #timeouts = new WeakSet<QuayApiError>();
  /** The token Quay last accepted on an authenticated-only route, and when. */
  #proof: { token: string; at: number } | undefined;

  constructor(options: QuayExchangeOptions) {
    this.#options = options;
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ??
      (options.insecure
        ? createInsecureTransport()
        : createFetchTransport({ caCerts: options.caBundle ? [options.caBundle] : [] }));
    this.#slots = new Semaphore(options.concurrency ?? 8);
    this.#now = options.now ?? (() => performance.now());
    this.#pace = new AdaptiveRate(this.#now);
  }

  /** Releases pooled connections. */
  close(): void {
    if (this.#ownsTransport) this.#transport.close();
  }

  /** The current pacing rate in requests/s (`Infinity` until Quay rate-limits this client). */
  get rate(): number {
    return this.#pace.rate;
  }

  /** Records that Quay accepted the current token just now. */
  tokenAccepted(): void {
    this.#proof = { token: this.#options.token(), at: this.#now() };
  }

  /** Whether Quay accepted the current token within the last 10 s (an anonymous answer can then be trusted). */
  tokenRecentlyAccepted(): boolean {
    const proof = this.#proof;
    return proof !== undefined && proof.token === this.#options.token() &&
      this.#now() - proof.at < TOKEN_PROOF_MS;
  }

  /**
   * One call. `authenticatedOnly` marks routes Quay never serves to an anonymous caller (they
   * answer 401 or the CSRF 403 to a refused token), so their success proves the token.
   */
  async call(spec: CallSpec, authenticatedOnly = false): Promise<CallResult> {
    const maxAttempts = Math.max(1, this.#options.maxAttempts ?? 3);
    const maxDelay = this.#options.maxRetryDelayMs ?? 1_000;
    for (let attempt = 1;; attempt++) {
      let outcome: CallResult | QuayApiError;
      await this.#slots.acquire();
      try {
        await this.#paced();
        outcome = await this.#exchange(spec);
        // A pooled connection the server closed as the request went out: nothing reached Quay, so
        // an idempotent request goes again at once, on a fresh connection (not an attempt).
        if (outcome instanceof QuayApiError && this.#stale.has(outcome) && spec.method !== "POST") {
          outcome = await this.#exchange(spec);
        }
      } finally {
        this.#slots.release();
      }
      if (!(outcome instanceof QuayApiError)) {
        if (authenticatedOnly && outcome.status < 400) this.tokenAccepted();
        return outcome;
      }
      const asked = outcome.retryAfterSeconds === undefined ? 0 : outcome.retryAfterSeconds * 1000;
      if (
        outcome.retry !== "transient" || attempt >= maxAttempts || this.#options.signal?.aborted ||
        this.#timeouts.has(outcome) || asked > maxDelay
      ) {
        throw outcome;
      }
      const backoff = backoffDelay(attempt, { baseMs: this.#options.retryBaseMs ?? 200, maxMs: maxDelay });
      await sleepUnlessAborted(Math.max(backoff, asked), this.#options.signal);
    }
  }

  /** Waits until the pacing allows the next request (a `Retry-After` pause, the adapted rate). */
  async #paced(): Promise<void> {
    for (;;) {
      const wait = this.#pace.reserve();
      if (wait <= 0 || this.#options.signal?.aborted) return;
      await sleepUnlessAborted(wait, this.#options.signal);
    }
  }

  async #exchange(spec: CallSpec): Promise<CallResult | QuayApiError> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.#options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    const started = performance.now();
    const sentAt = this.#now();
    let status = 0;
    let retryAfter: number | undefined;
    try {
      // The deadline's timer ends with the call (`deadline.ts`), and so does its link to the operator's signal.
      const response = await withDeadline(
        this.#options.timeoutMs ?? 10_000,
        this.#options.signal,
        (signal) =>
          this.#transport.send({
            method: spec.method,
            url: this.#options.baseUrl + spec.path,
            headers,
            body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
            signal,
          }),
      );
      status = response.status;
      retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      let body: unknown = undefined;
      let parsed = true;
      if (response.text !== "") {
        try {
          body = JSON.parse(response.text);
        } catch {
          parsed = false;
        }
      }
      const detail = errorDetail(body);
      const errorBody = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
      const errorType = typeof errorBody.error_type === "string" ? errorBody.error_type : undefined;
      if (status >= 200 && status < 300) {
        // A 2xx with an unparsable body is a proxy in the way, not Quay.
        if (!parsed) return quayError(502, spec.route, "Unparsable response body");
        return { status, body, detail, errorType, parsed };
      }
      // Quay treats a token it does not accept as no token: 401, or the CSRF check of a write.
      if (status === 401 || (status === 403 && CSRF_REFUSAL.test(detail))) {
        return quayError(status, spec.route, `Quay did not accept the token (${detail || "no detail"})`, {
          errorType,
          reason: QuayReason.TokenInvalid,
          retry: "terminal",
        });
      }
      if (spec.accept?.includes(status) && (parsed || status === 500)) {
        return { status, body, detail, errorType, parsed };
      }
      // A non-JSON error body (an HTML page from a proxy) says nothing about Quay; keep its status.
      return quayError(status, spec.route, parsed ? detail : "Non-JSON error body", {
        errorType,
        retryAfter,
      });
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      const reason = error.timedOut && !this.#options.signal?.aborted
        ? `No answer within ${this.#options.timeoutMs ?? 10_000} ms${
          error.proxy ? ` through the proxy ${error.proxy}` : ""
        }`
        : error.message;
      const failure = quayError(0, spec.route, reason);
      if (error.timedOut) this.#timeouts.add(failure);
      else this.#stale.add(failure);
      return failure;
    } finally {
      this.#pace.answered(sentAt, status, retryAfter);
      this.#options.onCall?.({ route: spec.route, status, durationMs: performance.now() - started });
    }
  }
}
