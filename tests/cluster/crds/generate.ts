/**
 * @module
 * Generates the CustomResourceDefinitions in this folder from OpenShift's own OpenAPI document
 * (`openapi/openapi.json` in the `github.com/openshift/api` Go module), so the schemas the real
 * kube-apiserver validates and prunes against are OpenShift's, field for field, rather than a
 * hand-written guess. Only the conversion to a structural schema is ours:
 *
 * - `$ref`s are inlined; `metav1.Time` becomes a date-time string, `IntOrString` and `Quantity`
 *   become int-or-string, `RawExtension` and `FieldsV1` stay open
 *   (`x-kubernetes-preserve-unknown-fields`), as they are open in OpenShift too.
 * - openapi-gen's `default` values are dropped: they are Go zero values, not server defaults. The
 *   only defaults kept are the ones OpenShift's registry strategies really apply (see SERVER_DEFAULTS).
 * - descriptions are dropped below the top level to keep each CRD well under the 256 KiB
 *   last-applied annotation limit of `kubectl apply`.
 *
 * Run after changing OPENSHIFT_API_VERSION (needs Go and the module proxy):
 *
 *     deno run --allow-run=go --allow-read --allow-write=tests/cluster/crds tests/cluster/crds/generate.ts
 */
import { stringify } from "yaml";

/** The openshift/api commit the schemas come from (a Go pseudo-version). */
export const OPENSHIFT_API_VERSION = "v0.0.0-20260709102940-580f1c1ba691";

type Schema = Record<string, unknown>;

interface Kind {
  group: "image.openshift.io" | "build.openshift.io";
  kind: string;
  plural: string;
  shortNames?: string[];
  categories?: string[];
  /** Only ImageStream has a status subresource in OpenShift; Build status is written through the
   * main resource (and `builds/details`), which a CRD without the subresource reproduces. */
  statusSubresource: boolean;
  printerColumns?: Schema[];
}

const KINDS: readonly Kind[] = [
  {
    group: "image.openshift.io",
    kind: "ImageStream",
    plural: "imagestreams",
    shortNames: ["is"],
    categories: ["all"],
    statusSubresource: true,
    printerColumns: [
      { name: "Image Repository", type: "string", jsonPath: ".status.dockerImageRepository" },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
  },
  {
    group: "image.openshift.io",
    kind: "ImageStreamImport",
    plural: "imagestreamimports",
    statusSubresource: false,
  },
  {
    group: "build.openshift.io",
    kind: "Build",
    plural: "builds",
    categories: ["all"],
    statusSubresource: false,
    printerColumns: [
      { name: "Type", type: "string", jsonPath: ".spec.strategy.type" },
      { name: "Status", type: "string", jsonPath: ".status.phase" },
      { name: "Started", type: "date", jsonPath: ".status.startTimestamp" },
    ],
  },
  {
    group: "build.openshift.io",
    kind: "BuildConfig",
    plural: "buildconfigs",
    shortNames: ["bc"],
    categories: ["all"],
    statusSubresource: false,
    printerColumns: [
      { name: "Type", type: "string", jsonPath: ".spec.strategy.type" },
      { name: "Latest", type: "integer", jsonPath: ".status.lastVersion" },
    ],
  },
];

/** Defaults that OpenShift's registry strategies apply on create (`PrepareForCreate`), keyed by
 * kind and then by a dotted path. Build: a new Build's phase is `New`. */
const SERVER_DEFAULTS: Record<string, Record<string, unknown>> = {
  Build: { "status": {}, "status.phase": "New" },
};

const SPECIAL: Record<string, Schema> = {
  "io.k8s.apimachinery.pkg.apis.meta.v1.Time": { type: "string", format: "date-time" },
  "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": { type: "string", format: "date-time" },
  "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": { type: "string" },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": { "x-kubernetes-int-or-string": true },
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern:
      "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
    "x-kubernetes-int-or-string": true,
  },
  "io.k8s.apimachinery.pkg.runtime.RawExtension": {
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
  },
  "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": {
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
  },
};

/** Keywords a CRD's structural schema accepts that OpenShift's document uses. */
const KEPT = [
  "type",
  "format",
  "enum",
  "pattern",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
] as const;

/** Raised when the OpenAPI document lacks a type or uses a shape this converter cannot express. */
export class SchemaConversionError extends Error {
  override name = "SchemaConversionError";
}

function definitionName(ref: string): string {
  return ref.replace(/^#\/definitions\//, "");
}

function convert(schema: Schema, definitions: Record<string, Schema>, stack: readonly string[]): Schema {
  const ref = schema["$ref"];
  if (typeof ref === "string") {
    const name = definitionName(ref);
    const special = SPECIAL[name];
    if (special) return structuredClone(special);
    // A recursive type cannot be inlined; leave that subtree open rather than fail.
    if (stack.includes(name)) return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
    const target = definitions[name];
    if (!target) throw new SchemaConversionError(`definition ${name} is missing`);
    return convert(target, definitions, [...stack, name]);
  }
  const out: Schema = {};
  for (const key of KEPT) {
    if (schema[key] !== undefined) out[key] = structuredClone(schema[key]);
  }
  if (schema["format"] === "int-or-string") {
    delete out["type"];
    delete out["format"];
    out["x-kubernetes-int-or-string"] = true;
  }
  const properties = schema["properties"] as Record<string, Schema> | undefined;
  const additional = schema["additionalProperties"] as Schema | boolean | undefined;
  const items = schema["items"] as Schema | undefined;
  if (properties) {
    out["type"] = "object";
    out["properties"] = Object.fromEntries(
      Object.entries(properties).map(([field, sub]) => [field, convert(sub, definitions, stack)]),
    );
    // openapi-gen marks every field without omitempty as required, yet OpenShift's server decodes
    // a missing field as its zero value, so `required` is dropped (list-map keys excepted, below).
  } else if (typeof additional === "object") {
    out["type"] = "object";
    out["additionalProperties"] = convert(additional, definitions, stack);
  } else if (out["type"] === "object" || (out["type"] === undefined && !out["x-kubernetes-int-or-string"])) {
    // No declared fields: the Go type is open (map[string]interface{} and the like).
    out["type"] = "object";
    out["x-kubernetes-preserve-unknown-fields"] = true;
  }
  if (items) {
    const converted = convert(items, definitions, stack);
    // A CRD demands that list-map keys be required; OpenShift's validation rejects a keyless entry too.
    const keys = schema["x-kubernetes-list-map-keys"];
    if (Array.isArray(keys)) converted["required"] = [...keys];
    out["items"] = converted;
  }
  return out;
}

function setDefault(root: Schema, path: string, value: unknown): void {
  let node = root;
  for (const part of path.split(".")) {
    const properties = node["properties"] as Record<string, Schema> | undefined;
    const next = properties?.[part];
    if (!next) throw new SchemaConversionError(`default path ${path} is not in the schema`);
    node = next;
  }
  node["default"] = value;
}

function topLevelSchema(kind: Kind, definitions: Record<string, Schema>): Schema {
  const version = kind.group.split(".")[0];
  const name = `com.github.openshift.api.${version}.v1.${kind.kind}`;
  const definition = definitions[name];
  if (!definition) throw new SchemaConversionError(`definition ${name} is missing`);
  const schema = convert(definition, definitions, [name]);
  const properties = schema["properties"] as Record<string, Schema>;
  // The root metadata is the apiserver's to define; a CRD may only say it is an object.
  properties["metadata"] = { type: "object" };
  const description = definition["description"];
  if (typeof description === "string") schema["description"] = description;
  for (const [path, value] of Object.entries(SERVER_DEFAULTS[kind.kind] ?? {})) {
    setDefault(schema, path, value);
  }
  return schema;
}

/** Builds the CustomResourceDefinition for one OpenShift kind from the OpenAPI definitions. */
export function customResourceDefinition(kind: Kind, definitions: Record<string, Schema>): Schema {
  const version: Schema = {
    name: "v1",
    served: true,
    storage: true,
    schema: { openAPIV3Schema: topLevelSchema(kind, definitions) },
  };
  if (kind.statusSubresource) version["subresources"] = { status: {} };
  if (kind.printerColumns) version["additionalPrinterColumns"] = kind.printerColumns;
  const names: Schema = {
    kind: kind.kind,
    listKind: `${kind.kind}List`,
    plural: kind.plural,
    singular: kind.kind.toLowerCase(),
  };
  if (kind.shortNames) names["shortNames"] = kind.shortNames;
  if (kind.categories) names["categories"] = kind.categories;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${kind.plural}.${kind.group}`,
      annotations: { "quay-bridge.test/openshift-api-version": OPENSHIFT_API_VERSION },
    },
    spec: { group: kind.group, scope: "Namespaced", names, versions: [version] },
  };
}

async function openapiDocumentPath(): Promise<string> {
  const output = await new Deno.Command("go", {
    args: ["mod", "download", "-json", `github.com/openshift/api@${OPENSHIFT_API_VERSION}`],
    cwd: "/", // outside any module, so no go.mod is consulted or changed
    env: { GOFLAGS: "-mod=mod" },
    stderr: "inherit",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { Dir?: string; Error?: string };
  if (!output.success || !info.Dir) {
    throw new SchemaConversionError(`go mod download github.com/openshift/api failed: ${info.Error ?? ""}`);
  }
  return `${info.Dir}/openapi/openapi.json`;
}

async function main(): Promise<void> {
  const document = JSON.parse(await Deno.readTextFile(await openapiDocumentPath())) as {
    definitions: Record<string, Schema>;
  };
  const folder = new URL(".", import.meta.url).pathname;
  for (const kind of KINDS) {
    const crd = customResourceDefinition(kind, document.definitions);
    const header =
      `# Generated by generate.ts from github.com/openshift/api@${OPENSHIFT_API_VERSION}; do not edit.\n`;
    await Deno.writeTextFile(
      `${folder}${kind.plural}.${kind.group}.yaml`,
      header + stringify(crd, { lineWidth: 0 }),
    );
  }
}

if (import.meta.main) await main();
