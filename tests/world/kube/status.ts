/**
 * @module
 * `v1` Status errors as kube-apiserver builds them (`k8s.io/apimachinery/pkg/api/errors`), and the
 * field errors of `k8s.io/apimachinery/pkg/util/validation/field` with their exact wording, so that a
 * client branching on `reason`, `code` or a message sees what a real cluster sends.
 */

/** A `metav1.StatusCause`. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** A `metav1.StatusDetails`. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A `metav1.Status` body. */
export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** An API error that the server answers with a `v1` Status. */
export class KubeStatusError extends Error {
  override name = "KubeStatusError";
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: Record<string, string>;

  constructor(
    code: number,
    reason: string,
    message: string,
    options: { details?: StatusDetails; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.reason = reason;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  /** The Status body, with the members in kube-apiserver's order. */
  toStatus(): StatusBody {
    const body: StatusBody = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) {
      // Re-insert `code` last, as Go's struct order puts details before it.
      delete (body as Partial<StatusBody>).code;
      body.details = this.details;
      body.code = this.code;
    }
    return body;
  }
}

/** What a resource is called in messages: its plural and API group. */
export interface QualifiedResource {
  resource: string;
  group: string;
}

function qualified(r: QualifiedResource): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

function resourceDetails(r: QualifiedResource, name?: string): StatusDetails {
  const details: StatusDetails = {};
  if (name !== undefined && name !== "") details.name = name;
  if (r.group) details.group = r.group;
  details.kind = r.resource;
  return details;
}

/** 404 `<resource> "<name>" not found`. */
export function notFound(r: QualifiedResource, name: string): KubeStatusError {
  return new KubeStatusError(404, "NotFound", `${qualified(r)} "${name}" not found`, {
    details: resourceDetails(r, name),
  });
}

/** 404 for a path no API serves. */
export function pathNotFound(): KubeStatusError {
  return new KubeStatusError(404, "NotFound", "the server could not find the requested resource", {
    details: {},
  });
}

/** 409 `<resource> "<name>" already exists`. */
export function alreadyExists(r: QualifiedResource, name: string): KubeStatusError {
  return new KubeStatusError(409, "AlreadyExists", `${qualified(r)} "${name}" already exists`, {
    details: resourceDetails(r, name),
  });
}

/** 409 Conflict on a stale resourceVersion. */
export function conflict(r: QualifiedResource, name: string, reason?: string): KubeStatusError {
  return new KubeStatusError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${
      reason ?? "the object has been modified; please apply your changes to the latest version and try again"
    }`,
    { details: resourceDetails(r, name) },
  );
}

/** 400 BadRequest with a plain message. */
export function badRequest(message: string): KubeStatusError {
  return new KubeStatusError(400, "BadRequest", message);
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(message: string): KubeStatusError {
  return new KubeStatusError(405, "MethodNotAllowed", message, { details: {} });
}

/** 415 for a body in a format the endpoint does not accept. */
export function unsupportedMediaType(accepted: readonly string[]): KubeStatusError {
  return new KubeStatusError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`,
  );
}

/** 410 Expired. */
export function expired(message: string): KubeStatusError {
  return new KubeStatusError(410, "Expired", message);
}

/** 500 InternalError. */
export function internalError(message: string, causes?: StatusCause[]): KubeStatusError {
  return new KubeStatusError(500, "InternalError", `Internal error occurred: ${message}`, {
    details: { causes: causes ?? [{ message }] },
  });
}

/** 401 Unauthorized. */
export function unauthorized(): KubeStatusError {
  return new KubeStatusError(401, "Unauthorized", "Unauthorized");
}

/** 403 with the RBAC wording, for a resource request or a non-resource path. */
export function forbidden(
  target: { resource: QualifiedResource; name?: string } | undefined,
  message: string,
): KubeStatusError {
  if (!target) return new KubeStatusError(403, "Forbidden", `forbidden: ${message}`, { details: {} });
  const who = target.name ? `${qualified(target.resource)} "${target.name}"` : qualified(target.resource);
  return new KubeStatusError(403, "Forbidden", `${who} is forbidden: ${message}`, {
    details: resourceDetails(target.resource, target.name),
  });
}

/** 413 for a body above the limit. */
export function tooLarge(limit: number): KubeStatusError {
  return new KubeStatusError(413, "RequestEntityTooLarge", `Request entity too large: limit is ${limit}`);
}

/** The error types of `field.ErrorType`. */
export type FieldErrorType =
  | "Required"
  | "Invalid"
  | "TypeInvalid"
  | "NotSupported"
  | "Forbidden"
  | "Duplicate"
  | "TooLong"
  | "TooMany"
  | "NotFound"
  | "Internal";

/** A `field.Error`: `field` is the dotted path (`metadata.name`, `spec.ports[0].port`). */
export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
}

const TYPE_WORDS: Record<FieldErrorType, string> = {
  Required: "Required value",
  Invalid: "Invalid value",
  TypeInvalid: "Invalid value",
  NotSupported: "Unsupported value",
  Forbidden: "Forbidden",
  Duplicate: "Duplicate value",
  TooLong: "Too long",
  TooMany: "Too many",
  NotFound: "Not found",
  Internal: "Internal error",
};

const CAUSE_TYPES: Record<FieldErrorType, string> = {
  Required: "FieldValueRequired",
  Invalid: "FieldValueInvalid",
  TypeInvalid: "FieldValueTypeInvalid",
  NotSupported: "FieldValueNotSupported",
  Forbidden: "FieldValueForbidden",
  Duplicate: "FieldValueDuplicate",
  TooLong: "FieldValueTooLong",
  TooMany: "FieldValueTooMany",
  NotFound: "FieldValueNotFound",
  Internal: "InternalError",
};

/** `field.Error.ErrorBody()`: the message without the field. */
export function fieldErrorBody(e: FieldError): string {
  let s = TYPE_WORDS[e.type];
  if (!["Required", "Forbidden", "TooLong", "Internal"].includes(e.type) && e.value !== undefined) {
    const v = e.value;
    s += ": " +
      (typeof v === "string" ? JSON.stringify(v) : typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  if (e.detail) s += `: ${e.detail}`;
  return s;
}

/** `field.Error.Error()`. */
export function fieldErrorText(e: FieldError): string {
  return `${e.field}: ${fieldErrorBody(e)}`;
}

/** 422 Invalid for an object of `kind` in `group`, as `apierrors.NewInvalid` words it. */
export function invalid(
  kind: { group: string; kind: string },
  name: string,
  errors: FieldError[],
): KubeStatusError {
  const texts = [...new Set(errors.map(fieldErrorText))];
  const qualifiedKind = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
  const message = texts.length === 0
    ? `${qualifiedKind} "${name}" is invalid`
    : `${qualifiedKind} "${name}" is invalid: ${texts.length === 1 ? texts[0] : `[${texts.join(", ")}]`}`;
  const details: StatusDetails = {};
  if (name) details.name = name;
  if (kind.group) details.group = kind.group;
  details.kind = kind.kind;
  details.causes = errors.map((e) => ({
    reason: CAUSE_TYPES[e.type],
    message: fieldErrorBody(e),
    field: e.field,
  }));
  return new KubeStatusError(422, "Invalid", message, { details });
}

/** 400 for a body that cannot be decoded into `kind`, as the codec words it. */
export function cannotHandle(kind: string, version: string, problem: string): KubeStatusError {
  return badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: ${problem}`);
}

/** A Success Status as DELETE answers for most types. */
export function successStatus(details: StatusDetails): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details };
}
