/**
 * @module
 * Object metadata validation with kube-apiserver's wording (`k8s.io/apimachinery/pkg/api/validation`):
 * names, labels, annotations, finalizers, immutable metadata on update, and the decoding rules a real
 * server applies while parsing (MicroTime's six fractional digits, base64 in Secrets).
 */
import { labelKeyProblem, labelValueProblem } from "./selectors.ts";
import type { FieldError } from "./status.ts";
import type { KubeObject, ObjectMeta } from "./types.ts";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and " +
  "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for " +
  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' " +
  "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for " +
  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Problems with `name` under a naming rule, as `IsDNS1123Label`/`IsDNS1123Subdomain` word them. */
export function nameProblems(name: string, rule: "subdomain" | "label" | "path"): string[] {
  const problems: string[] = [];
  if (rule === "label") {
    if (name.length > 63) problems.push("must be no more than 63 characters");
    if (!DNS1123_LABEL.test(name)) problems.push(LABEL_MSG);
  } else if (rule === "subdomain") {
    if (name.length > 253) problems.push("must be no more than 253 characters");
    if (!DNS1123_SUBDOMAIN.test(name)) problems.push(SUBDOMAIN_MSG);
  } else {
    if (name === "." || name === "..") return [`may not be '${name}'`];
    if (name.includes("/")) problems.push("may not contain '/'");
    if (name.includes("%")) problems.push("may not contain '%'");
  }
  return problems;
}

/** Validates the metadata of a new or updated object. */
export function validateMetadata(
  meta: ObjectMeta,
  options: { namespaced: boolean; nameRule: "subdomain" | "label" | "path" },
): FieldError[] {
  const errors: FieldError[] = [];
  if (meta.generateName) {
    const prefix = meta.generateName.replace(/-$/, "").replace(/\.$/, "");
    if (prefix && options.nameRule !== "path") {
      for (const p of nameProblems(prefix + "a", options.nameRule)) {
        errors.push({ type: "Invalid", field: "metadata.generateName", value: meta.generateName, detail: p });
      }
    }
  }
  if (!meta.name) {
    errors.push({ type: "Required", field: "metadata.name", detail: "name or generateName is required" });
  } else {
    for (const p of nameProblems(meta.name, options.nameRule)) {
      errors.push({ type: "Invalid", field: "metadata.name", value: meta.name, detail: p });
    }
  }
  if (options.namespaced) {
    if (!meta.namespace) errors.push({ type: "Required", field: "metadata.namespace" });
  } else if (meta.namespace) {
    errors.push({ type: "Forbidden", field: "metadata.namespace", detail: "not allowed on this type" });
  }
  for (const [key, value] of Object.entries(meta.labels ?? {})) {
    const kp = labelKeyProblem(key);
    if (kp) errors.push({ type: "Invalid", field: "metadata.labels", value: key, detail: kp });
    if (typeof value !== "string") {
      errors.push({ type: "Invalid", field: `metadata.labels`, value, detail: "must be a string" });
      continue;
    }
    const vp = labelValueProblem(value);
    if (vp) errors.push({ type: "Invalid", field: `metadata.labels`, value, detail: vp });
  }
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    const kp = labelKeyProblem(key.toLowerCase());
    if (kp) errors.push({ type: "Invalid", field: "metadata.annotations", value: key, detail: kp });
    annotationBytes += key.length + String(value).length;
  }
  if (annotationBytes > 262144) {
    errors.push({
      type: "TooLong",
      field: "metadata.annotations",
      detail: "may not be more than 262144 bytes",
    });
  }
  for (const finalizer of meta.finalizers ?? []) {
    const problem = labelKeyProblem(finalizer);
    if (problem) {
      errors.push({ type: "Invalid", field: "metadata.finalizers", value: finalizer, detail: problem });
    }
  }
  if (meta.generation !== undefined && meta.generation < 0) {
    errors.push({
      type: "Invalid",
      field: "metadata.generation",
      value: meta.generation,
      detail: "must be greater than or equal to 0",
    });
  }
  return errors;
}

/** Go's `%#v` of a `[]string`, as the finalizer message prints it. */
function goStringSlice(values: string[]): string {
  return `[]string{${values.map((v) => JSON.stringify(v)).join(", ")}}`;
}

/** Validates what may not change on update (`ValidateObjectMetaUpdate`). */
export function validateMetadataUpdate(meta: ObjectMeta, old: ObjectMeta): FieldError[] {
  const errors: FieldError[] = [];
  const immutable = (field: string, a: unknown, b: unknown) => {
    if (a !== b) {
      errors.push({ type: "Invalid", field: `metadata.${field}`, value: a, detail: "field is immutable" });
    }
  };
  immutable("name", meta.name, old.name);
  immutable("namespace", meta.namespace ?? "", old.namespace ?? "");
  immutable("uid", meta.uid, old.uid);
  immutable("creationTimestamp", meta.creationTimestamp, old.creationTimestamp);
  if (old.deletionTimestamp) {
    const before = new Set(old.finalizers ?? []);
    const extra = (meta.finalizers ?? []).filter((f) => !before.has(f));
    if (extra.length > 0) {
      errors.push({
        type: "Forbidden",
        field: "metadata.finalizers",
        detail: `no new finalizers can be added if the object is being deleted, found new finalizers ${
          goStringSlice([...new Set(extra)].sort())
        }`,
      });
    }
  }
  return errors;
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The codec's complaint about a `metav1.MicroTime` string, or `undefined` when it parses. A real
 * server parses with the layout `2006-01-02T15:04:05.000000Z07:00`, so `.123Z` and `Z` fail.
 */
export function microTimeProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") return `json: cannot unmarshal ${typeof value} into Go value of type string`;
  if (MICRO_TIME.test(value)) return undefined;
  const layout = "2006-01-02T15:04:05.000000Z07:00";
  const head = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.exec(value);
  if (!head) {
    return `parsing time ${JSON.stringify(value)} as "${layout}": cannot parse ${
      JSON.stringify(value)
    } as "2006"`;
  }
  const rest = value.slice(head[0].length);
  return `parsing time ${JSON.stringify(value)} as "${layout}": cannot parse ${
    JSON.stringify(rest)
  } as ".000000"`;
}

/** The codec's complaint about a `metav1.Time` string. */
export function timeProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" && TIME.test(value)) return undefined;
  const layout = "2006-01-02T15:04:05Z07:00";
  return `parsing time ${JSON.stringify(String(value))} as "${layout}": cannot parse ${
    JSON.stringify(String(value))
  } as "2006"`;
}

/** Index of the first byte that is not valid standard base64, as Go's decoder reports it. */
export function base64Problem(value: unknown): string | undefined {
  if (typeof value !== "string") {
    return `json: cannot unmarshal ${typeof value} into Go value of type []uint8`;
  }
  const clean = value;
  if (clean.length % 4 === 1) return `illegal base64 data at input byte ${clean.length - 1}`;
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i] as string;
    if (/[A-Za-z0-9+/]/.test(c)) continue;
    if (c === "=") {
      const rest = clean.slice(i);
      if (/^={1,2}$/.test(rest) && clean.length % 4 === 0) return undefined;
      return `illegal base64 data at input byte ${i}`;
    }
    return `illegal base64 data at input byte ${i}`;
  }
  if (clean.length % 4 !== 0) return `illegal base64 data at input byte ${clean.length - (clean.length % 4)}`;
  return undefined;
}

/** Encodes UTF-8 text as standard base64. */
export function toBase64(text: string): string {
  return new TextEncoder().encode(text).toBase64();
}

/** Decodes standard base64 to bytes; assumes it passed {@linkcode base64Problem}. */
export function fromBase64(value: string): Uint8Array {
  return Uint8Array.fromBase64(value);
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Problems with a ConfigMap or Secret data key (`IsConfigMapKey`). */
export function configKeyProblems(key: string): string[] {
  const problems: string[] = [];
  if (key.length > 253) problems.push("must be no more than 253 characters");
  if (!CONFIG_KEY.test(key)) {
    problems.push(
      "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or " +
        "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
  }
  if (key === ".") problems.push("must not be '.'");
  else if (key === "..") problems.push("must not be '..'");
  else if (key.startsWith("..")) problems.push("must not start with '..'");
  return problems;
}

/** True when a JSON value is a plain object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads a nested member by path, `undefined` when absent. */
export function dig(object: unknown, ...path: string[]): unknown {
  let current: unknown = object;
  for (const key of path) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** The list of MicroTime problems for the named members of `object` (for `decode`). */
export function microTimeFields(object: KubeObject, paths: string[][]): string | undefined {
  for (const path of paths) {
    const problem = microTimeProblem(dig(object, ...path));
    if (problem) return problem;
  }
  return undefined;
}
