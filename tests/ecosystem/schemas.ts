/**
 * @module
 * kubeconform's JSON schemas, generated from the real kube-apiserver's OpenAPI v3 document
 * (`/openapi/v3`) after the CRDs the manifests need are installed: the built-in kinds of exactly the
 * Kubernetes version the e2e suite runs, and the CRDs' own schemas as the apiserver publishes them.
 * kubeconform's default schemas are downloaded from GitHub at run time, which CI cannot rely on.
 *
 * One file per kind, laid out for kubeconform's `-schema-location` template
 * {@linkcode SCHEMA_TEMPLATE}. What differs from OpenAPI is what kubeconform's own
 * `openapi2jsonschema.py` changes: int-or-string and Quantity accept integers and numbers, `nullable`
 * becomes a `null` type, and (strict) objects with `properties` get `additionalProperties: false`
 * unless they preserve unknown fields.
 */

type Json = Record<string, unknown>;

/** kubeconform's `-schema-location` for the files {@linkcode writeSchemas} writes under `dir`. */
export const SCHEMA_TEMPLATE = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json";

const REF_PREFIX = "#/components/schemas/";

function convert(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convert);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) out[key] = convert(value);
  if (typeof out.$ref === "string") out.$ref = (out.$ref as string).replace(REF_PREFIX, "#/definitions/");
  if (out.format === "int-or-string" || (out["x-kubernetes-int-or-string"] === true && !out.anyOf)) {
    delete out.type;
    delete out.format;
    out.oneOf = [{ type: "string" }, { type: "integer" }];
  }
  if (out.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  if (
    out.properties && out.additionalProperties === undefined &&
    out["x-kubernetes-preserve-unknown-fields"] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

/** Quantity is a string in OpenAPI; manifests may write `cpu: 1`. */
const QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/** A group, version and kind; `group` is `""` for the core group. */
export interface Gvk {
  group: string;
  version: string;
  kind: string;
}

type Kind = Gvk & { name: string };

async function readOpenApi(request: (path: string) => Promise<Response>) {
  const index = await (await request("/openapi/v3")).json() as {
    paths: Record<string, { serverRelativeURL: string }>;
  };
  const definitions: Json = {};
  const kinds: Kind[] = [];
  for (const [path, { serverRelativeURL }] of Object.entries(index.paths)) {
    if (!/^(api\/v1|apis\/[^/]+\/[^/]+)$/.test(path)) continue;
    const doc = await (await request(serverRelativeURL)).json() as { components?: { schemas?: Json } };
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      definitions[name] ??= schema;
      for (const gvk of ((schema as Json)["x-kubernetes-group-version-kind"] ?? []) as Json[]) {
        kinds.push({ name, group: String(gvk.group), version: String(gvk.version), kind: String(gvk.kind) });
      }
    }
  }
  return { definitions, kinds };
}

/**
 * Fetches `/openapi/v3` of the cluster and writes one schema per kind under `dir`; returns the count.
 * The apiserver publishes a new CRD's schema a moment after the CRD is Established, so it reads
 * again until every kind of `required` is there (30 s at most).
 */
export async function writeSchemas(
  request: (path: string) => Promise<Response>,
  dir: string,
  required: readonly Gvk[] = [],
): Promise<number> {
  const deadline = Date.now() + 30_000;
  let read = await readOpenApi(request);
  const missing = () =>
    required.filter((r) =>
      !read.kinds.some((k) => k.group === r.group && k.version === r.version && k.kind === r.kind)
    );
  while (missing().length > 0) {
    if (Date.now() > deadline) {
      const names = missing().map((m) => `${m.group}/${m.version} ${m.kind}`).join(", ");
      throw new Error(`/openapi/v3 never published ${names}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    read = await readOpenApi(request);
  }
  const { definitions, kinds } = read;
  if (definitions[QUANTITY]) {
    const { type: _string, ...rest } = definitions[QUANTITY] as Json;
    definitions[QUANTITY] = { ...rest, oneOf: [{ type: "string" }, { type: "number" }] };
  }
  const converted = convert(definitions) as Json;
  /** The definitions `name` needs, following `$ref`s. */
  const closure = (name: string): Json => {
    const needed: Json = {};
    const pending = [name];
    while (pending.length > 0) {
      const next = pending.pop() as string;
      if (next in needed || !(next in converted)) continue;
      needed[next] = converted[next];
      const text = JSON.stringify(converted[next]);
      for (const m of text.matchAll(/"\$ref":"#\/definitions\/([^"]+)"/g)) pending.push(m[1] as string);
    }
    return needed;
  };
  let written = 0;
  for (const k of kinds) {
    // kubeconform's .Group is the apiVersion's part before "/": "v1" for the core group.
    const group = k.group === "" ? k.version : k.group;
    const file = `${dir}/${group}/${k.kind.toLowerCase()}_${k.version}.json`;
    await Deno.mkdir(`${dir}/${group}`, { recursive: true });
    await Deno.writeTextFile(
      file,
      JSON.stringify({ $ref: `#/definitions/${k.name}`, definitions: closure(k.name) }),
    );
    written++;
  }
  return written;
}
