/**
 * @module
 * Response builders and the error types of the test world's Quay: the API's RFC 7807 problems
 * (`endpoints/exception.py`), the bare `{"message"}` bodies Quay's data-model errors produce
 * (`handle_dme`), and the registry's `{"errors":[…]}` bodies (`endpoints/v2/errors.py`).
 *
 * Bodies are plain byte arrays with their length: the inner server speaks plain HTTP behind the TLS
 * front (`front.ts`), where the body-shape stalls of `Deno.serve` over TLS do not arise.
 */

const encoder = new TextEncoder();

/** Options for {@linkcode bytesResponse}. */
export interface BytesResponseOptions {
  status?: number;
  headers?: HeadersInit;
  /** Answer headers only, with the length the body would have had (HEAD). */
  headOnly?: boolean;
}

/** A response carrying `bytes` with an explicit Content-Length. */
export function bytesResponse(bytes: Uint8Array, options: BytesResponseOptions = {}): Response {
  const headers = new Headers(options.headers);
  const status = options.status ?? 200;
  if (status !== 204 && status !== 304) headers.set("content-length", String(bytes.byteLength));
  const body = options.headOnly || status === 204 || bytes.byteLength === 0
    ? null
    : bytes as Uint8Array<ArrayBuffer>;
  return new Response(body, { status, headers });
}

/** A JSON response. */
export function jsonResponse(value: unknown, status = 200, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  if (!h.has("content-type")) h.set("content-type", "application/json");
  return bytesResponse(encoder.encode(JSON.stringify(value)), { status, headers: h });
}

/** An empty response (204 and friends). */
export function emptyResponse(status = 204, headers?: HeadersInit): Response {
  return new Response(null, { status, headers });
}

/** An HTML page, as a reverse proxy in front of Quay answers. */
export function htmlResponse(html: string, status: number, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "text/html");
  return bytesResponse(encoder.encode(html), { status, headers: h });
}

/**
 * Flask's own 500 page: what Quay answers when an endpoint raises an exception it does not handle
 * (writes into a missing organization or repository do).
 */
export function flaskServerError(): Response {
  return htmlResponse(
    "<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n  <body>\n" +
      "    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n",
    500,
  );
}

/**
 * Quay's CSRF check, which every write of a caller without an accepted token meets (a bad, expired or
 * revoked OAuth token counts as none): 403 with a JSON body declared as HTML.
 */
export function csrfRefusal(): Response {
  const h = new Headers({ "content-type": "text/html; charset=utf-8" });
  return bytesResponse(encoder.encode('{"error": "CSRF token was invalid or missing."}\n'), {
    status: 403,
    headers: h,
  });
}

/** The API error types of `endpoints/exception.py`. */
export type ApiErrorType =
  | "external_service_timeout"
  | "invalid_request"
  | "invalid_response"
  | "invalid_token"
  | "expired_token"
  | "insufficient_scope"
  | "fresh_login_required"
  | "exceeds_license"
  | "not_found"
  | "downstream_issue";

/** An API error answered as Quay's RFC 7807 problem body. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly errorType: ApiErrorType;
  readonly detail: string;
  /** Overrides `detail` only, as `RepositoryNotFound.to_dict` does (error_message stays). */
  readonly detailOverride: string | undefined;
  readonly payload: Record<string, unknown>;

  constructor(
    status: number,
    errorType: ApiErrorType,
    detail: string,
    options: { detailOverride?: string; payload?: Record<string, unknown> } = {},
  ) {
    super(detail);
    this.name = "ApiProblem";
    this.status = status;
    this.errorType = errorType;
    this.detail = detail;
    this.detailOverride = options.detailOverride;
    this.payload = options.payload ?? {};
  }

  /** The body Quay sends, with `type` pointing at this host. */
  toBody(host: string): Record<string, unknown> {
    return {
      ...this.payload,
      detail: this.detailOverride ?? this.detail,
      error_message: this.detail,
      error_type: this.errorType,
      title: this.errorType,
      type: `https://${host}/api/v1/error/${this.errorType}`,
      status: this.status,
    };
  }
}

/** 400 `invalid_request`, what `request_error` and `InvalidRequest` raise. */
export function invalidRequest(detail: string): ApiProblem {
  return new ApiProblem(400, "invalid_request", detail);
}

/** 403 "Unauthorized" (`insufficient_scope`): the token lacks the scope or the user the permission. */
export function unauthorized(): ApiProblem {
  return new ApiProblem(403, "insufficient_scope", "Unauthorized");
}

/** 401 "Requires authentication": no valid token. */
export function requiresAuthentication(payload?: Record<string, unknown>): ApiProblem {
  return new ApiProblem(401, "invalid_token", "Requires authentication", payload ? { payload } : {});
}

/** 404 "Not Found". */
export function notFound(): ApiProblem {
  return new ApiProblem(404, "not_found", "Not Found");
}

/** 404 for a repository: `detail` names it, `error_message` stays "Not Found" (`RepositoryNotFound`). */
export function repositoryNotFound(namespace: string, repository: string): ApiProblem {
  return new ApiProblem(404, "not_found", "Not Found", {
    detailOverride: `Repository ${namespace}/${repository} not found`,
  });
}

/**
 * A data-model error escaping an endpoint: Quay's app-wide handler answers 400 `{"message": …}`
 * without the problem fields (e.g. "Could not find robot with specified username").
 */
export class DataModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataModelError";
  }
}

/** Registry v2 error codes used here. */
export type RegistryErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "TAG_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "INVALID_REQUEST"
  | "UNKNOWN";

/** A registry error, answered as `{"errors":[{code, message, detail}]}`. */
export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** For 401s: the repository and actions the WWW-Authenticate challenge should name. */
  readonly challenge: { repository: string; actions: readonly string[] } | undefined;

  constructor(
    code: RegistryErrorCode,
    message: string,
    status: number,
    options: { detail?: unknown; challenge?: { repository: string; actions: readonly string[] } } = {},
  ) {
    super(message);
    this.name = "RegistryError";
    this.code = code;
    this.status = status;
    this.detail = options.detail ?? {};
    this.challenge = options.challenge;
  }
}

/** The `WWW-Authenticate` challenge of this registry, optionally naming a repository scope. */
export function bearerChallenge(
  host: string,
  scope?: { repository: string; actions: readonly string[] },
): string {
  const base = `Bearer realm="https://${host}/v2/auth",service="${host}"`;
  return scope ? `${base},scope="repository:${scope.repository}:${scope.actions.join(",")}"` : base;
}

/** Renders a {@linkcode RegistryError}. */
export function registryErrorResponse(error: RegistryError, host: string, headOnly = false): Response {
  const headers = new Headers({
    "content-type": "application/json",
    "docker-distribution-api-version": "registry/2.0",
  });
  if (error.status === 401) headers.set("www-authenticate", bearerChallenge(host, error.challenge));
  const body = encoder.encode(
    JSON.stringify({ errors: [{ code: error.code, message: error.message, detail: error.detail }] }),
  );
  return bytesResponse(body, { status: error.status, headers, headOnly });
}

/** Quay's date format (`format_date`): RFC 2822 with a `-0000` zone. */
export function formatQuayDate(date: Date): string {
  return date.toUTCString().replace("GMT", "-0000");
}

/** Python's `repr` of a JSON value, for messages that quote values as jsonschema does. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(value);
  if (typeof value === "string") {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    const escaped = value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll("\t", "\\t")
      .replaceAll("\r", "\\r");
    return quote + (quote === "'" ? escaped.replaceAll("'", "\\'") : escaped) + quote;
  }
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(", ")}}`;
  }
  return String(value);
}
