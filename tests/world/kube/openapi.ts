/**
 * @module
 * The OpenAPI v3 documents kubectl needs: an index at `/openapi/v3` and, per group version, the
 * PATCH operations of each resource with its `x-kubernetes-group-version-kind` and query parameters.
 * kubectl reads them to learn that the server validates fields itself (`fieldValidation`), so it
 * sends `fieldValidation=Strict` rather than validating client-side. They deliberately carry no
 * schemas and no strategic-merge content type: kubectl then builds strategic merge patches from its
 * compiled-in types, and JSON merge patches for custom resources, as it does for CRDs on a real
 * cluster. `/openapi/v2` is not served (404); kubectl copes. `kubectl explain` does not work.
 */
import type { Registry } from "./registry.ts";
import type { ResourceDef } from "./types.ts";

const QUERY_PARAMETERS = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({
  name,
  in: "query",
  schema: { type: "string", uniqueItems: true },
}));

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function patchPath(def: ResourceDef): string {
  const base = `/${gvPath(def.group, def.version)}`;
  return def.namespaced
    ? `${base}/namespaces/{namespace}/${def.plural}/{name}`
    : `${base}/${def.plural}/{name}`;
}

/** The document of one group version, or `undefined` when it is not served. */
export function openApiDocument(
  registry: Registry,
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const defs = registry.resourcesOf(group, version);
  if (defs.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  for (const def of defs) {
    if (def.createOnly) continue;
    const object = { schema: { type: "object" } };
    paths[patchPath(def)] = {
      patch: {
        description: `partially update the specified ${def.kind}`,
        operationId: `patch${def.kind}`,
        parameters: QUERY_PARAMETERS,
        requestBody: {
          content: {
            "application/apply-patch+yaml": object,
            "application/json-patch+json": object,
            "application/merge-patch+json": object,
          },
          required: true,
        },
        responses: { "200": { description: "OK" }, "201": { description: "Created" } },
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": { group: def.group, version: def.version, kind: def.kind },
      },
      parameters: [
        { name: "name", in: "path", required: true, schema: { type: "string", uniqueItems: true } },
        ...(def.namespaced
          ? [{ name: "namespace", in: "path", required: true, schema: { type: "string", uniqueItems: true } }]
          : []),
      ],
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.32.4" },
    paths,
    components: { schemas: {} },
  };
}

async function hashOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-512", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/** The `/openapi/v3` index: one entry per served group version, with a content hash. */
export async function openApiIndex(registry: Registry): Promise<Record<string, unknown>> {
  const paths: Record<string, unknown> = {};
  const gvs: Array<[string, string]> = [["", "v1"]];
  for (const group of registry.groups()) {
    for (const version of registry.versionsOf(group)) gvs.push([group, version]);
  }
  for (const [group, version] of gvs) {
    const doc = openApiDocument(registry, group, version);
    if (!doc) continue;
    const path = gvPath(group, version);
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${await hashOf(JSON.stringify(doc))}` };
  }
  return { paths };
}
