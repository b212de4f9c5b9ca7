/**
 * @module
 * The patch formats of `PATCH` requests: JSON merge patch (RFC 7386), JSON patch (RFC 6902, through
 * fast-json-patch) and strategic merge patch as `k8s.io/apimachinery/pkg/util/strategicpatch`
 * applies it: lists merged by their merge key, primitive lists with the merge strategy as sets, and
 * the directives kubectl sends (`$patch`, `$retainKeys`, `$setElementOrder/<list>`,
 * `$deleteFromPrimitiveList/<list>`).
 */
import jsonPatch from "fast-json-patch";
import { badRequest, KubeStatusError } from "./status.ts";
import type { MergeSchema } from "./types.ts";
import { isObject } from "./validation.ts";

type Json = unknown;

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** Applies an RFC 6902 JSON patch; failures are 422 as kube-apiserver reports them. */
export function applyJsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations)) {
    throw badRequest(
      "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
    );
  }
  for (const op of operations) {
    if (!isObject(op)) {
      throw badRequest(
        `error decoding patch: json: cannot unmarshal ${
          Array.isArray(op) ? "array" : typeof op
        } into Go value of type handlers.jsonPatchOp`,
      );
    }
  }
  try {
    const copy = structuredClone(target);
    return jsonPatch.applyPatch(copy, operations as jsonPatch.Operation[], true, true).newDocument;
  } catch (error) {
    throw new KubeStatusError(
      422,
      "Invalid",
      "the server rejected our request due to an error in our request",
      {
        details: {},
        cause: error,
      },
    );
  }
}

function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) {
    return value.filter((item) => !(isObject(item) && Object.keys(item).length === 1 && "$patch" in item))
      .map(stripDirectives);
  }
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith("$")) continue;
    if (v === null) continue;
    out[k] = stripDirectives(v);
  }
  return out;
}

function sameKey(a: Json, b: Json, key: string): boolean {
  return isObject(a) && isObject(b) && JSON.stringify(a[key]) === JSON.stringify(b[key]);
}

/** Reorders `list` so that the items named in `order` come in that order, others keeping their slots. */
function applyOrder(list: Json[], order: Json[], mergeKey: string | undefined): Json[] {
  const identity = (item: Json) => JSON.stringify(mergeKey && isObject(item) ? item[mergeKey] : item);
  const wanted = order.map((o) => JSON.stringify(mergeKey && isObject(o) ? o[mergeKey] : o));
  const rank = new Map(wanted.map((w, i) => [w, i]));
  const ordered = list.filter((item) => rank.has(identity(item)))
    .sort((a, b) => (rank.get(identity(a)) as number) - (rank.get(identity(b)) as number));
  let next = 0;
  return list.map((item) => (rank.has(identity(item)) ? ordered[next++] : item));
}

function mergeList(original: Json, patch: Json[], schema: MergeSchema | undefined, field: string): Json[] {
  const strategy = schema?.strategy;
  if (strategy !== "merge") return stripDirectives(patch) as Json[];
  if (patch.some((item) => isObject(item) && item.$patch === "replace")) {
    return stripDirectives(patch.filter((item) => !(isObject(item) && item.$patch === "replace"))) as Json[];
  }
  const result: Json[] = Array.isArray(original) ? [...original] : [];
  const mergeKey = schema?.mergeKey;
  if (mergeKey) {
    for (const item of patch) {
      if (!isObject(item)) {
        throw badRequest(`unable to find api field in struct for the merge key "${mergeKey}" of ${field}`);
      }
      if (!(mergeKey in item)) {
        throw badRequest(`map: ${JSON.stringify(item)} does not contain declared merge key: ${mergeKey}`);
      }
      const index = result.findIndex((existing) => sameKey(existing, item, mergeKey));
      if (item.$patch === "delete") {
        if (index >= 0) result.splice(index, 1);
        continue;
      }
      if (index >= 0) result[index] = strategicMerge(result[index], item, schema?.items);
      else result.push(strategicMerge({}, item, schema?.items));
    }
    return result;
  }
  for (const item of patch) {
    if (!result.some((existing) => JSON.stringify(existing) === JSON.stringify(item))) result.push(item);
  }
  return result;
}

/** Applies a strategic merge patch to `original` under `schema`. */
export function strategicMerge(original: Json, patch: Json, schema: MergeSchema | undefined): Json {
  if (!isObject(patch)) return patch;
  if (patch.$patch === "replace") return stripDirectives(patch);
  const result: Record<string, unknown> = isObject(original) ? { ...original } : {};
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const key of Object.keys(result)) if (!keep.has(key)) delete result[key];
  }
  const orders: Array<[string, Json[]]> = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch" || key === "$retainKeys") continue;
    if (key.startsWith("$setElementOrder/")) {
      if (Array.isArray(value)) orders.push([key.slice("$setElementOrder/".length), value]);
      continue;
    }
    if (key.startsWith("$deleteFromPrimitiveList/")) {
      const field = key.slice("$deleteFromPrimitiveList/".length);
      const drop = new Set((Array.isArray(value) ? value : []).map((v) => JSON.stringify(v)));
      if (Array.isArray(result[field])) {
        result[field] = (result[field] as Json[]).filter((v) => !drop.has(JSON.stringify(v)));
      }
      continue;
    }
    const fieldSchema = schema?.fields?.[key] ?? schema?.values;
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      if (value.$patch === "delete") delete result[key];
      else result[key] = strategicMerge(result[key], value, fieldSchema);
    } else if (Array.isArray(value)) {
      result[key] = mergeList(result[key], value, fieldSchema, key);
    } else {
      result[key] = value;
    }
  }
  for (const [field, order] of orders) {
    if (Array.isArray(result[field])) {
      const fieldSchema = schema?.fields?.[field];
      result[field] = applyOrder(result[field] as Json[], order, fieldSchema?.mergeKey);
    }
  }
  return result;
}
