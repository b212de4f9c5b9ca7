/**
 * @module
 * CustomResourceDefinitions: validation of the definition, the `status` a real apiextensions server
 * writes (NamesAccepted, Established), and the resources it serves: structural pruning of unknown
 * fields (unless `x-kubernetes-preserve-unknown-fields`), defaulting, and OpenAPI v3 schema validation
 * through ajv with the field errors kube-apiserver words (`spec.x: Required value`, `... in body should
 * match '...'`, `Unsupported value: ...`), additionalPrinterColumns and selectableFields.
 * `x-kubernetes-validations` (CEL) rules are not evaluated.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { age, AGE_COLUMN, METADATA_SCHEMA, NAME_COLUMN } from "./builtin.ts";
import { evaluateJsonPath, parseJsonPath } from "./jsonpath.ts";
import type { FieldError } from "./status.ts";
import type { Column, KubeObject, MergeSchema, ResourceDef } from "./types.ts";
import { isObject } from "./validation.ts";

type Schema = Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
for (
  const format of [
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "password",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "date",
    "duration",
    "bsonobjectid",
    "isbn",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "quantity",
  ]
) {
  ajv.addFormat(format, true);
}
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);

/** Converts a Kubernetes structural schema into JSON Schema that ajv understands. */
function toJsonSchema(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith("x-kubernetes-") || key === "default" || key === "example" || key === "externalDocs") {
      continue;
    }
    if (key === "properties" && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSchema(v)]));
    } else if (key === "items" || key === "additionalProperties" || key === "not") {
      out[key] = typeof value === "boolean" ? value : toJsonSchema(value);
    } else if ((key === "allOf" || key === "anyOf" || key === "oneOf") && Array.isArray(value)) {
      out[key] = value.map(toJsonSchema);
    } else {
      out[key] = value;
    }
  }
  if (schema["x-kubernetes-int-or-string"] === true) {
    delete out.type;
    out.anyOf = [...(Array.isArray(out.anyOf) ? out.anyOf : []), { type: "integer" }, { type: "string" }];
  }
  if (schema.nullable === true && typeof out.type === "string") {
    out.type = [out.type, "null"];
    delete out.nullable;
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

function preservesUnknown(schema: Schema | undefined): boolean {
  return schema?.["x-kubernetes-preserve-unknown-fields"] === true;
}

/** Removes fields the schema does not know; returns their dotted paths. */
function pruneUnknown(
  value: unknown,
  schema: Schema | undefined,
  path: string,
  unknown: string[],
  root = false,
): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    const items = isObject(schema.items) ? schema.items : undefined;
    value.forEach((item, i) => pruneUnknown(item, items, `${path}[${i}]`, unknown));
    return;
  }
  if (!isObject(value)) return;
  const properties = isObject(schema.properties) ? schema.properties as Record<string, Schema> : undefined;
  const additional = isObject(schema.additionalProperties)
    ? schema.additionalProperties as Schema
    : undefined;
  const embedded = schema["x-kubernetes-embedded-resource"] === true;
  for (const key of Object.keys(value)) {
    const child = `${path ? `${path}.` : ""}${key}`;
    if (root && (key === "apiVersion" || key === "kind" || key === "metadata")) continue;
    if (embedded && (key === "apiVersion" || key === "kind" || key === "metadata")) continue;
    const sub = properties?.[key] ?? additional;
    if (sub) {
      pruneUnknown(value[key], sub, child, unknown);
    } else if (!preservesUnknown(schema) && schema.additionalProperties !== true) {
      unknown.push(child);
      delete value[key];
    }
  }
}

/** Fills schema defaults in place, as the apiextensions decoder does. */
function applyDefaults(value: unknown, schema: Schema | undefined): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    const items = isObject(schema.items) ? schema.items : undefined;
    for (const item of value) applyDefaults(item, items);
    return;
  }
  if (!isObject(value)) return;
  const properties = isObject(schema.properties) ? schema.properties as Record<string, Schema> : {};
  for (const [key, sub] of Object.entries(properties)) {
    if (
      sub.default !== undefined &&
      (value[key] === undefined || (value[key] === null && sub.nullable !== true))
    ) {
      value[key] = structuredClone(sub.default);
    }
    applyDefaults(value[key], sub);
  }
  if (isObject(schema.additionalProperties)) {
    for (const key of Object.keys(value)) {
      if (!(key in properties)) applyDefaults(value[key], schema.additionalProperties as Schema);
    }
  }
}

function goType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function fieldPath(pointer: string): string {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

function valueAtPointer(root: unknown, pointer: string): unknown {
  let current = root;
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isObject(current)) current = current[part];
    else return undefined;
  }
  return current;
}

/** ajv errors as the field errors kube-apiserver reports for a custom resource. */
function toFieldErrors(errors: ErrorObject[], object: unknown): FieldError[] {
  const out: FieldError[] = [];
  const typeFailed = new Set(errors.filter((e) => e.keyword === "type").map((e) => e.instancePath));
  for (const e of errors) {
    const path = fieldPath(e.instancePath);
    const value = valueAtPointer(object, e.instancePath);
    if (e.keyword !== "type" && typeFailed.has(e.instancePath)) continue;
    if (e.keyword === "anyOf" || e.keyword === "oneOf" || e.keyword === "if") continue;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case "required": {
        const missing = String(params.missingProperty);
        out.push({ type: "Required", field: path ? `${path}.${missing}` : missing });
        break;
      }
      case "type": {
        const expected = Array.isArray(params.type) ? (params.type as string[])[0] : String(params.type);
        const actual = goType(value);
        out.push({
          type: "TypeInvalid",
          field: path,
          value: actual,
          detail: `${path} in body must be of type ${expected}: "${actual}"`,
        });
        break;
      }
      case "enum":
        out.push({
          type: "NotSupported",
          field: path,
          value,
          detail: "supported values: " +
            (params.allowedValues as unknown[]).map((v) =>
              JSON.stringify(typeof v === "string" ? v : JSON.stringify(v))
            ).join(", "),
        });
        break;
      case "pattern":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body should match '${params.pattern}'`,
        });
        break;
      case "minLength":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body should be at least ${params.limit} chars long`,
        });
        break;
      case "maxLength":
        out.push({ type: "TooLong", field: path, detail: `may not be more than ${params.limit} bytes` });
        break;
      case "maxItems":
        out.push({
          type: "TooMany",
          field: path,
          value: Array.isArray(value) ? value.length : undefined,
          detail: `must have at most ${params.limit} items`,
        });
        break;
      case "minItems":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body should have at least ${params.limit} items`,
        });
        break;
      case "minimum":
      case "exclusiveMinimum":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body should be greater than ${
            e.keyword === "minimum" ? "or equal to " : ""
          }${params.limit}`,
        });
        break;
      case "maximum":
      case "exclusiveMaximum":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body should be less than ${
            e.keyword === "maximum" ? "or equal to " : ""
          }${params.limit}`,
        });
        break;
      case "format":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body must be of type ${params.format}: ${JSON.stringify(value)}`,
        });
        break;
      case "uniqueItems":
        out.push({
          type: "Invalid",
          field: path,
          value,
          detail: `${path} in body shouldn't contain duplicates`,
        });
        break;
      default:
        out.push({
          type: "Invalid",
          field: path,
          value: value ?? "",
          detail: `${path} in body ${e.message ?? "is invalid"}`,
        });
    }
  }
  return out;
}

/** Server-side apply semantics from `x-kubernetes-list-type` and friends. */
function mergeSchemaOf(schema: unknown): MergeSchema | undefined {
  if (!isObject(schema)) return undefined;
  const out: MergeSchema = {};
  if (schema["x-kubernetes-map-type"] === "atomic") out.atomic = true;
  const listType = schema["x-kubernetes-list-type"];
  if (listType === "map" || listType === "set" || listType === "atomic") out.listType = listType;
  if (Array.isArray(schema["x-kubernetes-list-map-keys"])) {
    out.mapKeys = schema["x-kubernetes-list-map-keys"] as string[];
  }
  if (isObject(schema.properties)) {
    out.fields = {};
    for (const [k, v] of Object.entries(schema.properties)) {
      const sub = mergeSchemaOf(v);
      if (sub) out.fields[k] = sub;
    }
  }
  if (isObject(schema.additionalProperties)) out.values = mergeSchemaOf(schema.additionalProperties);
  if (isObject(schema.items)) out.items = mergeSchemaOf(schema.items);
  return out;
}

function printerColumns(version: Record<string, unknown>): Column[] {
  const defs = Array.isArray(version.additionalPrinterColumns) ? version.additionalPrinterColumns : undefined;
  if (!defs) return [NAME_COLUMN, AGE_COLUMN];
  const columns: Column[] = [NAME_COLUMN];
  for (const raw of defs) {
    if (!isObject(raw)) continue;
    const jsonPath = String(raw.jsonPath ?? "");
    const type = String(raw.type ?? "string") as Column["type"];
    let steps: ReturnType<typeof parseJsonPath>;
    try {
      steps = parseJsonPath(jsonPath);
    } catch {
      continue;
    }
    columns.push({
      name: String(raw.name),
      type,
      format: typeof raw.format === "string" ? raw.format : "",
      description: typeof raw.description === "string"
        ? raw.description
        : `Custom resource definition column (in JSONPath format): ${jsonPath}`,
      priority: typeof raw.priority === "number" ? raw.priority : 0,
      cell: (o, now) => {
        const found = evaluateJsonPath(steps, o);
        if (found.length === 0) return null;
        const v = found[0];
        switch (type) {
          case "string":
            return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
          case "integer":
            return typeof v === "number" ? Math.trunc(v) : null;
          case "number":
            return typeof v === "number" ? v : null;
          case "boolean":
            return typeof v === "boolean" ? v : null;
          case "date":
            return typeof v === "string" ? age(v, now) : null;
        }
        return null;
      },
    });
  }
  return columns;
}

/** Problems with a CustomResourceDefinition, as the apiextensions validation reports the common ones. */
export function validateCrd(crd: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  const group = typeof spec.group === "string" ? spec.group : "";
  if (!group) errors.push({ type: "Required", field: "spec.group" });
  else if (!group.includes(".")) {
    errors.push({
      type: "Invalid",
      field: "spec.group",
      value: group,
      detail: "should be a domain with at least one dot",
    });
  }
  if (!names.plural) errors.push({ type: "Required", field: "spec.names.plural" });
  if (!names.kind) errors.push({ type: "Required", field: "spec.names.kind" });
  if (names.plural && group && crd.metadata.name !== `${names.plural}.${group}`) {
    errors.push({
      type: "Invalid",
      field: "metadata.name",
      value: crd.metadata.name,
      detail: 'must be spec.names.plural+"."+spec.group',
    });
  }
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster") {
    errors.push({
      type: "NotSupported",
      field: "spec.scope",
      value: spec.scope ?? "",
      detail: 'supported values: "Cluster", "Namespaced"',
    });
  }
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) {
    errors.push({
      type: "Invalid",
      field: "spec.versions",
      value: versions,
      detail: "must have exactly one version marked as storage version",
    });
  }
  const storage = versions.filter((v) => isObject(v) && v.storage === true).length;
  if (versions.length > 0 && storage !== 1) {
    errors.push({
      type: "Invalid",
      field: "spec.versions",
      value: versions.map((v) => (isObject(v) ? v.name : v)),
      detail: "must have exactly one version marked as storage version",
    });
  }
  versions.forEach((v, i) => {
    if (!isObject(v)) return;
    const schema = isObject(v.schema) ? (v.schema as Record<string, unknown>).openAPIV3Schema : undefined;
    if (!isObject(schema)) {
      errors.push({
        type: "Required",
        field: `spec.versions[${i}].schema.openAPIV3Schema`,
        detail: "schemas are required",
      });
      return;
    }
    const at = `spec.versions[${i}].schema.openAPIV3Schema`;
    errors.push(...structuralProblems(schema, at));
    if (errors.length === 0) {
      try {
        ajv.compile(toJsonSchema(schema) as Schema);
      } catch (error) {
        errors.push({ type: "Invalid", field: at, value: "", detail: (error as Error).message });
      }
    }
  });
  return errors;
}

const TYPES = ["array", "boolean", "integer", "number", "object", "string"];

/** The structural-schema rules a CRD's schema breaks most often. */
function structuralProblems(schema: Record<string, unknown>, at: string): FieldError[] {
  const errors: FieldError[] = [];
  const type = schema.type;
  if (type !== undefined && (typeof type !== "string" || !TYPES.includes(type))) {
    errors.push({
      type: "NotSupported",
      field: `${at}.type`,
      value: type,
      detail: `supported values: ${TYPES.map((t) => `"${t}"`).join(", ")}`,
    });
  }
  if (schema.pattern !== undefined) {
    try {
      new RegExp(String(schema.pattern), "u");
    } catch (error) {
      errors.push({
        type: "Invalid",
        field: `${at}.pattern`,
        value: schema.pattern,
        detail: (error as Error).message,
      });
    }
  }
  if (isObject(schema.properties)) {
    for (const [k, v] of Object.entries(schema.properties)) {
      if (isObject(v)) errors.push(...structuralProblems(v, `${at}.properties[${k}]`));
      else {errors.push({
          type: "Invalid",
          field: `${at}.properties[${k}]`,
          value: v,
          detail: "must be an object",
        });}
    }
  }
  if (isObject(schema.items)) errors.push(...structuralProblems(schema.items, `${at}.items`));
  if (isObject(schema.additionalProperties)) {
    errors.push(...structuralProblems(schema.additionalProperties, `${at}.additionalProperties`));
  }
  return errors;
}

/** Fills the defaults of a CRD's spec and writes the status a real server reports once established. */
export function crdDefaultsAndStatus(crd: KubeObject, now: string): void {
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  if (typeof names.kind === "string") {
    names.singular ??= names.kind.toLowerCase();
    names.listKind ??= `${names.kind}List`;
  }
  spec.conversion ??= { strategy: "None" };
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  const storage = versions.find((v) => isObject(v) && v.storage === true) as
    | Record<string, unknown>
    | undefined;
  const previous = isObject(crd.status) ? crd.status : {};
  const stored = new Set<string>(
    Array.isArray(previous.storedVersions) ? previous.storedVersions as string[] : [],
  );
  if (storage?.name) stored.add(String(storage.name));
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: "True",
    lastTransitionTime: now,
    reason,
    message,
  });
  crd.status = {
    conditions: [
      condition("NamesAccepted", "NoConflicts", "no conflicts found"),
      condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ],
    acceptedNames: {
      plural: names.plural,
      singular: names.singular,
      ...(names.shortNames ? { shortNames: names.shortNames } : {}),
      kind: names.kind,
      listKind: names.listKind,
      ...(names.categories ? { categories: names.categories } : {}),
    },
    storedVersions: [...stored],
  };
}

const compiled = new WeakMap<object, ValidateFunction>();

/** The resources a CRD serves, one per served version. */
export function crdResources(crd: KubeObject): ResourceDef[] {
  const spec = crd.spec as Record<string, unknown>;
  const names = spec.names as Record<string, unknown>;
  const group = String(spec.group);
  const plural = String(names.plural);
  const kind = String(names.kind);
  const namespaced = spec.scope === "Namespaced";
  const versions = (spec.versions as Array<Record<string, unknown>>).filter((v) => v.served !== false);
  const storage = (spec.versions as Array<Record<string, unknown>>).find((v) => v.storage === true);
  return versions.map((version) => {
    const schema = (version.schema as Record<string, unknown> | undefined)?.openAPIV3Schema as
      | Schema
      | undefined;
    const hasStatus = isObject(version.subresources) &&
      isObject((version.subresources as Record<string, unknown>).status);
    const hasScale = isObject(version.subresources) &&
      isObject((version.subresources as Record<string, unknown>).scale);
    let validate: ValidateFunction | undefined;
    if (schema) {
      validate = compiled.get(schema);
      if (!validate) {
        validate = ajv.compile(toJsonSchema(schema) as Schema);
        compiled.set(schema, validate);
      }
    }
    const selectable: ResourceDef["fieldSelectors"] = { "metadata.name": (o) => o.metadata.name };
    if (namespaced) selectable["metadata.namespace"] = (o) => o.metadata.namespace;
    for (const f of Array.isArray(version.selectableFields) ? version.selectableFields : []) {
      if (!isObject(f) || typeof f.jsonPath !== "string") continue;
      const steps = parseJsonPath(f.jsonPath);
      selectable[f.jsonPath.replace(/^\./, "")] = (o) => {
        const v = evaluateJsonPath(steps, o)[0];
        return v === undefined ? undefined : String(v);
      };
    }
    const merge = mergeSchemaOf(schema) ?? {};
    merge.fields = { ...merge.fields, metadata: METADATA_SCHEMA };
    const subresources: ResourceDef["subresources"] = {};
    if (hasStatus) subresources.status = { kind, verbs: ["get", "patch", "update"] };
    if (hasScale) subresources.scale = { kind: "Scale", verbs: ["get", "patch", "update"] };
    const def: ResourceDef = {
      group,
      version: String(version.name),
      plural,
      singular: String(names.singular ?? kind.toLowerCase()),
      kind,
      listKind: String(names.listKind ?? `${kind}List`),
      namespaced,
      shortNames: Array.isArray(names.shortNames) ? names.shortNames as string[] : [],
      categories: Array.isArray(names.categories) ? names.categories as string[] : [],
      verbs: ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
      subresources,
      storageKey: `${group}/${plural}`,
      fromCrd: true,
      storageVersion: `${group}/${storage?.name ?? version.name}`,
      statusSubresource: hasStatus,
      generation: true,
      createOnly: false,
      returnDeletedObject: false,
      nameRule: "subdomain",
      fieldSelectors: selectable,
      customFieldLabels: false,
      columns: printerColumns(version),
      strategic: undefined,
      applySchema: merge,
      custom: {
        crdName: String(crd.metadata.name),
        hasStatus,
        process(object) {
          const unknown: string[] = [];
          if (!schema) return { errors: [], unknown };
          pruneUnknown(object, schema, "", unknown, true);
          applyDefaults(object, schema);
          const errors: FieldError[] = [];
          if (validate && !validate(object)) errors.push(...toFieldErrors(validate.errors ?? [], object));
          return { errors, unknown };
        },
      },
    };
    return def;
  });
}
