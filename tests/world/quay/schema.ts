/**
 * @module
 * The request schemas of the Quay endpoints the world serves (copied from `endpoints/api/*.py`) and
 * their validation. Ajv does the validating; the message is rendered the way Python's jsonschema
 * renders `str(ValidationError)`, which is what Quay puts in the 400's `detail` (first line:
 * "'role' is a required property", "'x' is not one of ['read', 'write', 'admin']", …).
 */
import { Ajv, type ErrorObject } from "ajv";
import { pyRepr } from "./http_util.ts";

const ROLE = { type: "string", enum: ["read", "write", "admin"] } as const;

/** Request schemas by Quay's schema name. */
export const SCHEMAS = {
  NewOrg: {
    type: "object",
    required: ["name"],
    properties: {
      name: { type: "string" },
      email: { type: "string" },
      recaptcha_response: { type: "string" },
    },
  },
  CreateRobot: {
    type: "object",
    properties: {
      description: { type: "string", maxLength: 255 },
      unstructured_metadata: { type: "object" },
    },
  },
  NewPrototype: {
    type: "object",
    required: ["role", "delegate"],
    properties: {
      role: ROLE,
      activating_user: {
        type: "object",
        required: ["name"],
        properties: { name: { type: "string" } },
      },
      delegate: {
        type: "object",
        required: ["name", "kind"],
        properties: {
          name: { type: "string" },
          kind: { type: "string", enum: ["user", "team"] },
        },
      },
    },
  },
  PrototypeUpdate: { type: "object", required: ["role"], properties: { role: ROLE } },
  NewRepo: {
    type: "object",
    required: ["repository", "visibility", "description"],
    properties: {
      repository: { type: "string" },
      visibility: { type: "string", enum: ["public", "private"] },
      namespace: { type: "string" },
      description: { type: "string" },
      repo_kind: { type: ["string", "null"], enum: ["image", "application", null] },
    },
  },
  RepoUpdate: { type: "object", required: ["description"], properties: { description: { type: "string" } } },
  UserPermission: { type: "object", required: ["role"], properties: { role: ROLE } },
} as const;

/** A schema name. */
export type SchemaName = keyof typeof SCHEMAS;

const ajv = new Ajv({ strict: false, allErrors: false });
const validators = new Map(
  Object.entries(SCHEMAS).map(([name, schema]) => [name as SchemaName, ajv.compile(schema)]),
);

function pointerGet(root: unknown, pointer: string): unknown {
  let node = root;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function pyPath(kind: "schema" | "instance", path: string[]): string {
  return kind + path.map((p) => `[${pyRepr(/^\d+$/.test(p) ? Number(p) : p)}]`).join("");
}

function firstLine(error: ErrorObject, instance: unknown): string {
  const value = pointerGet(instance, error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return `${pyRepr(params.missingProperty)} is a required property`;
    case "type": {
      const types = Array.isArray(params.type) ? params.type : [params.type];
      return `${pyRepr(value)} is not of type ${types.map((t) => pyRepr(t)).join(", ")}`;
    }
    case "enum":
      return `${pyRepr(value)} is not one of ${pyRepr(params.allowedValues)}`;
    case "maxLength":
      return `${pyRepr(value)} is too long`;
    default:
      return `${pyRepr(value)} ${error.message ?? "is invalid"}`;
  }
}

/**
 * Validates `instance` against a schema; `undefined` when valid, otherwise the message Quay would
 * send (jsonschema's multi-line `str()` form).
 */
export function validateSchema(name: SchemaName, instance: unknown): string | undefined {
  const validate = validators.get(name);
  if (!validate || validate(instance)) return undefined;
  const error = validate.errors?.[0];
  if (!error) return "Invalid request";
  const schemaPath = error.schemaPath.replace(/^#\/?/, "").split("/").filter((p) => p !== "");
  const keyword = schemaPath.pop() ?? error.keyword;
  const subSchema = pointerGet(SCHEMAS[name], "/" + schemaPath.join("/"));
  const instancePath = error.instancePath.split("/").slice(1);
  return [
    firstLine(error, instance),
    "",
    `Failed validating ${pyRepr(keyword)} in ${pyPath("schema", schemaPath)}:`,
    `    ${JSON.stringify(subSchema)}`,
    "",
    `On ${pyPath("instance", instancePath)}:`,
    `    ${pyRepr(pointerGet(instance, error.instancePath))}`,
  ].join("\n");
}
