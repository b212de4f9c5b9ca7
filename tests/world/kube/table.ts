/**
 * @module
 * Server-side printing: `meta.k8s.io/v1` Tables for `Accept: application/json;as=Table;...` (what
 * `kubectl get` asks for) and PartialObjectMetadata for metadata-only clients.
 */
import type { KubeObject, ResourceDef } from "./types.ts";

/** `includeObject` of a Table request. */
export type IncludeObject = "None" | "Metadata" | "Object";

/** The representation a client asked for in `Accept`. */
export type Representation = "object" | "table" | "partial";

/** Reads `Accept` the way the apiserver's content negotiation does, for the forms the world serves. */
export function representationOf(accept: string | null): Representation {
  if (!accept) return "object";
  for (const part of accept.split(",")) {
    const params = new Map(
      part.split(";").slice(1).map((p) => p.trim().split("=") as [string, string]).map((
        [k, v],
      ) => [k, v ?? ""]),
    );
    const type = part.split(";")[0]?.trim();
    if (type !== "application/json" && type !== "*/*" && type !== "application/*") continue;
    const as = params.get("as");
    if (!as) return "object";
    if (params.get("g") !== "meta.k8s.io" || !["v1", "v1beta1"].includes(params.get("v") ?? "")) continue;
    if (as === "Table") return "table";
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") return "partial";
  }
  return "object";
}

/** PartialObjectMetadata of an object. */
export function partialOf(object: KubeObject): Record<string, unknown> {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata };
}

function columnDefinitions(def: ResourceDef): unknown[] {
  return def.columns.map((c) => ({
    name: c.name,
    type: c.type,
    format: c.format ?? "",
    description: c.description ?? "",
    priority: c.priority ?? 0,
  }));
}

/** One Table row. */
export function rowOf(def: ResourceDef, object: KubeObject, include: IncludeObject, now: number): unknown {
  const cells = def.columns.map((c) => {
    const v = c.cell(object, now);
    return v === undefined ? null : v;
  });
  const row: Record<string, unknown> = { cells };
  if (include === "Object") row.object = object;
  else if (include === "Metadata") row.object = partialOf(object);
  return row;
}

/** A Table of `objects`. */
export function tableOf(
  def: ResourceDef,
  objects: KubeObject[],
  meta: Record<string, unknown>,
  options: { include: IncludeObject; headers: boolean; now: number },
): Record<string, unknown> {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: meta,
    columnDefinitions: options.headers ? columnDefinitions(def) : null,
    rows: objects.map((o) => rowOf(def, o, options.include, options.now)),
  };
}
