/**
 * @module
 * The AdmissionReview envelope, `admission.k8s.io/v1` and `v1beta1`: parsing a request body
 * defensively and shaping the answer in the version that was asked. Nothing here trusts the
 * input's shape; a body that cannot be answered with an AdmissionReview (no `request.uid`) is
 * reported as unparseable so the server can answer HTTP 400.
 */

/** The AdmissionReview versions served. */
export const ADMISSION_VERSIONS = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] as const;

/** One of {@linkcode ADMISSION_VERSIONS}. */
export type AdmissionVersion = typeof ADMISSION_VERSIONS[number];

/** A JSON object of unknown shape. */
export type JsonObject = Record<string, unknown>;

/** An RFC 6902 operation, as the webhook emits them. */
export type JsonPatchOperation =
  | { readonly op: "add" | "replace"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string };

/** The `status` of a denial (a `metav1.Status` subset). */
export interface AdmissionStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

/** The answer to one admission request, before the `uid` is attached. */
export interface AdmissionAnswer {
  readonly allowed: boolean;
  readonly patch?: readonly JsonPatchOperation[];
  readonly status?: AdmissionStatus;
  readonly warnings?: readonly string[];
}

/** A parsed AdmissionReview request. `request` is still unvalidated beyond `uid`. */
export interface ParsedReview {
  readonly version: AdmissionVersion;
  readonly uid: string;
  readonly request: JsonObject;
}

/** Result of {@linkcode parseAdmissionReview}. */
export type ParseResult =
  | { readonly ok: true; readonly review: ParsedReview }
  | { readonly ok: false; readonly message: string };

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses an AdmissionReview request body. Never throws. */
export function parseAdmissionReview(text: string): ParseResult {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: "body is not valid JSON" };
  }
  if (!isJsonObject(body)) return { ok: false, message: "body is not a JSON object" };
  const version = body.apiVersion;
  if (version !== ADMISSION_VERSIONS[0] && version !== ADMISSION_VERSIONS[1]) {
    return { ok: false, message: "apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1" };
  }
  if (body.kind !== "AdmissionReview") return { ok: false, message: "kind must be AdmissionReview" };
  const request = body.request;
  if (!isJsonObject(request)) return { ok: false, message: "request is missing" };
  const uid = request.uid;
  if (typeof uid !== "string" || uid === "") return { ok: false, message: "request.uid is missing" };
  return { ok: true, review: { version, uid, request } };
}

const encoder = new TextEncoder();
/** Encodings of shared (frozen, cached) patches, so a repeated patch is encoded once. */
const encoded = new WeakMap<readonly JsonPatchOperation[], string>();

/** Base64 of the JSON of a patch, as `AdmissionResponse.patch` carries it. */
export function encodePatch(patch: readonly JsonPatchOperation[]): string {
  let base64 = encoded.get(patch);
  if (base64 === undefined) {
    base64 = encoder.encode(JSON.stringify(patch)).toBase64();
    if (Object.isFrozen(patch)) encoded.set(patch, base64);
  }
  return base64;
}

/**
 * The AdmissionReview answering `review` as JSON text, in the version asked, echoing the uid.
 * `warnings` are sent on v1 only (see mod.ts for why). Built as text: it is the hot path.
 */
export function admissionReviewResponse(review: ParsedReview, answer: AdmissionAnswer): string {
  let response = `{"uid":${JSON.stringify(review.uid)},"allowed":${answer.allowed}`;
  if (answer.patch !== undefined && answer.patch.length > 0) {
    response += `,"patchType":"JSONPatch","patch":"${encodePatch(answer.patch)}"`;
  }
  if (answer.status !== undefined) response += `,"status":${JSON.stringify(answer.status)}`;
  if (
    answer.warnings !== undefined && answer.warnings.length > 0 && review.version === ADMISSION_VERSIONS[0]
  ) {
    response += `,"warnings":${JSON.stringify(answer.warnings)}`;
  }
  return `{"apiVersion":"${review.version}","kind":"AdmissionReview","response":${response}}}`;
}
