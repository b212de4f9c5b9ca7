/**
 * @module
 * Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply, a simplified
 * structured-merge-diff: maps and structs are granular, lists are atomic unless their schema makes
 * them a `set` (primitives) or a `map` (items keyed by `mapKeys`). An Update takes ownership of the
 * fields it changed; an Apply owns exactly what it applied, removes what it owned and stopped
 * applying (unless someone else owns it too), and conflicts with other owners of fields whose values
 * it would change unless forced. kubectl's client-side to server-side apply upgrade is honoured
 * (conflicts on fields still equal to `last-applied-configuration` are allowed, and the annotation
 * is kept in step), as kube-apiserver's `lastAppliedManager`/`lastAppliedUpdater` do.
 */
import { KubeStatusError } from "./status.ts";
import type { FieldsV1, KubeObject, ManagedFieldsEntry, MergeSchema } from "./types.ts";
import { isObject } from "./validation.ts";

/** The annotation kubectl's client-side apply keeps. */
export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

type Path = string[];

const TRACKED_METADATA = ["labels", "annotations", "finalizers", "ownerReferences"];

/** Which part of an object a write covers: everything but status, or status only. */
export type Scope = "main" | "status";

function listKeys(schema: MergeSchema | undefined): string[] | undefined {
  if (!schema) return undefined;
  if (schema.listType === "map") return schema.mapKeys ?? (schema.mergeKey ? [schema.mergeKey] : undefined);
  if (schema.listType === undefined && schema.mergeKey && schema.strategy === "merge") {
    return schema.mapKeys ?? [schema.mergeKey];
  }
  return undefined;
}

function isSet(schema: MergeSchema | undefined): boolean {
  return schema?.listType === "set" ||
    (schema?.listType === undefined && schema?.strategy === "merge" && !schema.mergeKey);
}

function itemKey(item: unknown, keys: string[]): string {
  const o = isObject(item) ? item : {};
  const key: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) key[k] = o[k];
  return `k:${JSON.stringify(key)}`;
}

function childSchema(schema: MergeSchema | undefined, field: string): MergeSchema | undefined {
  return schema?.fields?.[field] ?? schema?.values;
}

/** The part of `object` a scope covers, without system-managed members. */
function scoped(object: KubeObject, scope: Scope, hasStatus: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (scope === "status") {
    if (object.status !== undefined) out.status = object.status;
    return out;
  }
  for (const [key, value] of Object.entries(object)) {
    if (key === "apiVersion" || key === "kind" || key === "metadata") continue;
    if (key === "status" && hasStatus) continue;
    out[key] = value;
  }
  const meta: Record<string, unknown> = {};
  for (const key of TRACKED_METADATA) {
    const v = object.metadata?.[key];
    if (v !== undefined && v !== null) meta[key] = v;
  }
  if (Object.keys(meta).length > 0) out.metadata = meta;
  return out;
}

/** The FieldsV1 set of every leaf of `value`. */
function fieldSet(value: unknown, schema: MergeSchema | undefined, markSelf: boolean): FieldsV1 {
  const node: FieldsV1 = {};
  if (isObject(value) && !schema?.atomic) {
    if (markSelf) node["."] = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) continue;
      node[`f:${k}`] = fieldSet(v, childSchema(schema, k), markSelf);
    }
    return node;
  }
  if (Array.isArray(value)) {
    const keys = listKeys(schema);
    if (keys) {
      if (markSelf) node["."] = {};
      for (const item of value) {
        const child = fieldSet(item, schema?.items, true);
        child["."] = {};
        node[itemKey(item, keys)] = child;
      }
      return node;
    }
    if (isSet(schema)) {
      if (markSelf) node["."] = {};
      for (const item of value) node[`v:${JSON.stringify(item)}`] = {};
      return node;
    }
  }
  return node;
}

function isLeaf(node: FieldsV1): boolean {
  return Object.keys(node).length === 0;
}

/** Every path in a set that denotes owned content (leaves and `.` markers). */
function leaves(set: FieldsV1, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [k, child] of Object.entries(set)) {
    if (k === ".") {
      out.push([...prefix, "."]);
    } else if (isLeaf(child)) {
      out.push([...prefix, k]);
    } else {
      out.push(...leaves(child, [...prefix, k]));
    }
  }
  return out;
}

function has(set: FieldsV1, path: Path): boolean {
  let node: FieldsV1 | undefined = set;
  for (const p of path) {
    node = node?.[p];
    if (!node) return false;
  }
  return true;
}

function addPath(set: FieldsV1, path: Path): void {
  let node = set;
  for (const p of path) node = node[p] ??= {};
}

function removePath(set: FieldsV1, path: Path): void {
  const trail: Array<[FieldsV1, string]> = [];
  let node: FieldsV1 | undefined = set;
  for (const p of path) {
    if (!node?.[p]) return;
    trail.push([node, p]);
    node = node[p];
  }
  const last = trail.pop();
  if (!last) return;
  delete last[0][last[1]];
  // Drop parents left empty, so a set never claims a map through an empty node.
  while (trail.length > 0) {
    const [parent, key] = trail.pop() as [FieldsV1, string];
    if (isLeaf(parent[key] as FieldsV1)) delete parent[key];
    else break;
  }
}

function union(a: FieldsV1, b: FieldsV1): FieldsV1 {
  const out: FieldsV1 = structuredClone(a);
  for (const path of leaves(b)) addPath(out, path);
  return out;
}

/** Navigates one path element; `undefined` when absent. */
function step(value: unknown, element: string): unknown {
  if (element.startsWith("f:")) return isObject(value) ? value[element.slice(2)] : undefined;
  if (element.startsWith("k:")) {
    if (!Array.isArray(value)) return undefined;
    const key = JSON.parse(element.slice(2)) as Record<string, unknown>;
    return value.find((item) =>
      isObject(item) && Object.entries(key).every(([k, v]) => JSON.stringify(item[k]) === JSON.stringify(v))
    );
  }
  if (element.startsWith("v:")) {
    if (!Array.isArray(value)) return undefined;
    const wanted = element.slice(2);
    return value.some((item) => JSON.stringify(item) === wanted) ? JSON.parse(wanted) : undefined;
  }
  if (element.startsWith("i:")) return Array.isArray(value) ? value[Number(element.slice(2))] : undefined;
  return undefined;
}

function valueAt(value: unknown, path: Path): unknown {
  let current = value;
  for (const element of path) {
    if (element === ".") return current;
    current = step(current, element);
    if (current === undefined) return undefined;
  }
  return current;
}

function removeAt(root: Record<string, unknown>, path: Path): void {
  const elements = path[path.length - 1] === "." ? path.slice(0, -1) : path;
  if (elements.length === 0) return;
  const parent = valueAt(root, elements.slice(0, -1));
  const last = elements[elements.length - 1] as string;
  if (last.startsWith("f:") && isObject(parent)) {
    delete parent[last.slice(2)];
  } else if (Array.isArray(parent)) {
    const target = step(parent, last);
    const index = parent.findIndex((item) => JSON.stringify(item) === JSON.stringify(target));
    if (index >= 0) parent.splice(index, 1);
  }
}

/** `.spec.containers[name="c"].image`, as structured-merge-diff prints a path. */
export function pathText(path: Path): string {
  let out = "";
  for (const element of path) {
    if (element === ".") continue;
    if (element.startsWith("f:")) out += `.${element.slice(2)}`;
    else if (element.startsWith("k:")) {
      const key = JSON.parse(element.slice(2)) as Record<string, unknown>;
      out += `[${Object.entries(key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}]`;
    } else if (element.startsWith("v:")) out += `[=${element.slice(2)}]`;
    else if (element.startsWith("i:")) out += `[${element.slice(2)}]`;
  }
  return out;
}

/** Drops from `set` every path that no longer resolves in `object`. */
function prune(set: FieldsV1, object: unknown): FieldsV1 {
  const out: FieldsV1 = {};
  for (const path of leaves(set)) if (valueAt(object, path) !== undefined) addPath(out, path);
  return out;
}

/** The fields whose value in `next` is new or different from `prev`, with `.` for new maps and items. */
function changed(prev: unknown, next: unknown, schema: MergeSchema | undefined): FieldsV1 {
  const node: FieldsV1 = {};
  if (isObject(next) && !schema?.atomic) {
    if (!isObject(prev)) node["."] = {};
    for (const [k, v] of Object.entries(next)) {
      if (v === null || v === undefined) continue;
      const before = isObject(prev) ? prev[k] : undefined;
      const sub = changed(before, v, childSchema(schema, k));
      if (sub !== NONE) node[`f:${k}`] = sub;
    }
    return Object.keys(node).length === 0 ? NONE : node;
  }
  if (Array.isArray(next)) {
    const keys = listKeys(schema);
    if (keys) {
      if (!Array.isArray(prev)) node["."] = {};
      for (const item of next) {
        const k = itemKey(item, keys);
        const before = Array.isArray(prev) ? step(prev, k) : undefined;
        const sub = changed(before, item, schema?.items);
        if (sub !== NONE) {
          if (before === undefined) sub["."] = {};
          node[k] = sub;
        }
      }
      return Object.keys(node).length === 0 ? NONE : node;
    }
    if (isSet(schema)) {
      if (!Array.isArray(prev)) node["."] = {};
      for (const item of next) {
        const k = `v:${JSON.stringify(item)}`;
        if (!Array.isArray(prev) || step(prev, k) === undefined) node[k] = {};
      }
      return Object.keys(node).length === 0 ? NONE : node;
    }
  }
  return JSON.stringify(prev) === JSON.stringify(next) ? NONE : {};
}

const NONE: FieldsV1 = Object.freeze({}) as FieldsV1;

function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function entriesOf(object: KubeObject | undefined): ManagedFieldsEntry[] {
  const list = object?.metadata?.managedFields;
  return Array.isArray(list)
    ? structuredClone(list).filter((e) => isObject(e) && typeof e.manager === "string")
    : [];
}

function sameSlot(
  e: ManagedFieldsEntry,
  manager: string,
  operation: string,
  scope: Scope,
  apiVersion: string,
) {
  return e.manager === manager && e.operation === operation &&
    (e.subresource ?? "") === (scope === "status" ? "status" : "") &&
    (operation === "Apply" || e.apiVersion === apiVersion);
}

function finish(entries: ManagedFieldsEntry[], object: KubeObject): ManagedFieldsEntry[] | undefined {
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    const set = e.fieldsV1 ? prune(e.fieldsV1, object) : {};
    // Apply entries are kept even when empty; Update entries that own nothing are dropped.
    if (isLeaf(set) && e.operation !== "Apply") continue;
    out.push({ ...e, fieldsV1: set });
  }
  return out.length > 0 ? out : undefined;
}

/** Options shared by {@linkcode recordUpdate} and {@linkcode serverSideApply}. */
export interface OwnershipOptions {
  manager: string;
  apiVersion: string;
  scope: Scope;
  schema: MergeSchema | undefined;
  hasStatus: boolean;
}

/**
 * Sets `next.metadata.managedFields` after a create, update or patch by `manager`: it takes the
 * fields it changed from other managers. If the request itself rewrote managedFields (kubectl's
 * apply upgrade does), those are taken as the starting point; `[{}]` resets them.
 */
export function recordUpdate(
  prev: KubeObject | undefined,
  next: KubeObject,
  options: OwnershipOptions,
): void {
  const requested = next.metadata.managedFields;
  let entries = entriesOf(prev);
  let reset = false;
  if (
    Array.isArray(requested) &&
    JSON.stringify(requested) !== JSON.stringify(prev?.metadata.managedFields ?? [])
  ) {
    if (requested.length === 1 && isObject(requested[0]) && Object.keys(requested[0]).length === 0) {
      entries = [];
      reset = true;
    } else if (requested.length > 0) {
      entries = entriesOf(next);
      next.metadata.managedFields = finish(entries, next);
      return;
    }
  }
  const before = reset || !prev ? undefined : scoped(prev, options.scope, options.hasStatus);
  const after = scoped(next, options.scope, options.hasStatus);
  const diff = changed(before, after, options.schema);
  if (diff !== NONE) {
    // The object and its metadata always exist; nobody owns them as such.
    delete diff["."];
    if (diff["f:metadata"]) delete diff["f:metadata"]["."];
    if (options.scope === "status" && diff["f:status"]) delete diff["f:status"]["."];
  }
  if (!isLeaf(diff)) {
    for (const e of entries) {
      if ((e.subresource ?? "") !== (options.scope === "status" ? "status" : "")) continue;
      for (const path of leaves(diff)) if (path[path.length - 1] !== ".") removePath(e.fieldsV1, path);
    }
    let mine = entries.find((e) => sameSlot(e, options.manager, "Update", options.scope, options.apiVersion));
    if (!mine) {
      mine = {
        manager: options.manager,
        operation: "Update",
        apiVersion: options.apiVersion,
        fieldsType: "FieldsV1",
        fieldsV1: {},
      };
      if (options.scope === "status") mine.subresource = "status";
      entries.push(mine);
    }
    mine.fieldsV1 = union(mine.fieldsV1 ?? {}, diff);
    mine.time = nowSeconds();
    if (options.scope === "status") mine.subresource = "status";
    // Keep the entry's member order as kube-apiserver writes it.
    const index = entries.indexOf(mine);
    entries[index] = orderEntry(mine);
  }
  next.metadata.managedFields = finish(entries, next);
}

function orderEntry(e: ManagedFieldsEntry): ManagedFieldsEntry {
  const out: ManagedFieldsEntry = {
    manager: e.manager,
    operation: e.operation,
    apiVersion: e.apiVersion,
  } as ManagedFieldsEntry;
  if (e.time) out.time = e.time;
  out.fieldsType = "FieldsV1";
  out.fieldsV1 = e.fieldsV1;
  if (e.subresource) out.subresource = e.subresource;
  return out;
}

/** Merges an applied configuration into an object: granular maps, keyed lists, sets, atomic lists. */
function applyMerge(current: unknown, applied: unknown, schema: MergeSchema | undefined): unknown {
  if (isObject(applied) && !schema?.atomic) {
    const out: Record<string, unknown> = isObject(current) ? { ...current } : {};
    for (const [k, v] of Object.entries(applied)) {
      if (v === null) {
        delete out[k];
        continue;
      }
      out[k] = applyMerge(out[k], v, childSchema(schema, k));
    }
    return out;
  }
  if (Array.isArray(applied)) {
    const keys = listKeys(schema);
    if (keys && Array.isArray(current)) {
      const out = [...current];
      for (const item of applied) {
        const k = itemKey(item, keys);
        const index = out.findIndex((existing) => itemKey(existing, keys) === k);
        if (index >= 0) out[index] = applyMerge(out[index], item, schema?.items);
        else out.push(item);
      }
      return out;
    }
    if (isSet(schema) && Array.isArray(current)) {
      const out = [...current];
      for (const item of applied) {
        if (!out.some((e) => JSON.stringify(e) === JSON.stringify(item))) out.push(item);
      }
      return out;
    }
  }
  return structuredClone(applied);
}

/** Canonical JSON with sorted keys, as Go marshals the last-applied annotation. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  if (isObject(value)) {
    return `{${
      Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(value);
}

/** A field manager conflict, answered as 409 with the apiserver's wording. */
export interface Conflict {
  manager: string;
  apiVersion: string;
  path: Path;
}

function conflictError(conflicts: Conflict[]): KubeStatusError {
  const n = conflicts.length;
  const lines = conflicts.map((c) =>
    `conflict with "${c.manager}" using ${c.apiVersion}: ${pathText(c.path)}`
  );
  const message = n === 1
    ? `Apply failed with 1 conflict: ${lines[0]}`
    : `Apply failed with ${n} conflicts: ${lines.join("\n")}`;
  return new KubeStatusError(409, "Conflict", message, {
    details: {
      causes: conflicts.map((c) => ({
        reason: "FieldManagerConflict",
        message: `conflict with "${c.manager}" using ${c.apiVersion}`,
        field: pathText(c.path),
      })),
    },
  });
}

/**
 * Server-side apply of `applied` onto `current` (absent for a create) by `manager`. Returns the
 * new object with its managedFields; throws 409 on conflicts unless `force`.
 */
export function serverSideApply(
  current: KubeObject | undefined,
  applied: KubeObject,
  options: OwnershipOptions & { force: boolean },
): KubeObject {
  const entries = entriesOf(current);
  const appliedScoped = scoped(applied, options.scope, options.hasStatus);
  const appliedSet = fieldSet(appliedScoped, { ...options.schema }, false);
  const status = options.scope === "status" ? "status" : "";
  const mine = entries.find((e) => sameSlot(e, options.manager, "Apply", options.scope, options.apiVersion));
  const currentScoped = current ? scoped(current, options.scope, options.hasStatus) : {};

  let conflicts: Conflict[] = [];
  for (const e of entries) {
    if (e === mine || (e.subresource ?? "") !== status || !e.fieldsV1) continue;
    for (const path of leaves(appliedSet)) {
      // Owning an item's existence is shared freely; only values conflict.
      if (path[path.length - 1] === "." || !has(e.fieldsV1, path)) continue;
      const live = valueAt(currentScoped, path);
      const want = valueAt(appliedScoped, path);
      if (live === undefined || JSON.stringify(live) === JSON.stringify(want)) continue;
      conflicts.push({ manager: e.manager, apiVersion: e.apiVersion, path });
    }
  }
  let force = options.force;
  if (conflicts.length > 0 && !force && options.manager === "kubectl") {
    const allowed = allowedFromLastApplied(current, options);
    conflicts = conflicts.filter((c) => !allowed.some((p) => JSON.stringify(p) === JSON.stringify(c.path)));
    if (conflicts.length === 0) force = true;
  }
  if (conflicts.length > 0 && !force) throw conflictError(conflicts);

  // Forced or allowed: the applier takes the fields over.
  for (const e of entries) {
    if (e === mine || (e.subresource ?? "") !== status || !e.fieldsV1) continue;
    for (const path of leaves(appliedSet)) {
      const live = valueAt(currentScoped, path);
      if (has(e.fieldsV1, path) && JSON.stringify(live) !== JSON.stringify(valueAt(appliedScoped, path))) {
        removePath(e.fieldsV1, path);
      }
    }
  }

  const base: KubeObject = current
    ? structuredClone(current)
    : { apiVersion: applied.apiVersion, kind: applied.kind, metadata: {} };
  const root = base as unknown as Record<string, unknown>;
  if (mine?.fieldsV1) {
    for (const path of leaves(mine.fieldsV1)) {
      if (has(appliedSet, path)) continue;
      // Owning a map's existence never removes the map: only its members go.
      if (path[path.length - 1] === ".") continue;
      const ownedElsewhere = entries.some((e) => e !== mine && e.fieldsV1 && has(e.fieldsV1, path));
      if (!ownedElsewhere) removeAt(options.scope === "status" ? root : root, path);
    }
  }
  const merged = applyMerge(root, { ...appliedScoped }, options.schema) as KubeObject;
  merged.apiVersion = base.apiVersion ?? applied.apiVersion;
  merged.kind = base.kind ?? applied.kind;
  merged.metadata = { ...base.metadata, ...(merged.metadata ?? {}) };
  if (!current) {
    for (const key of ["name", "generateName", "namespace"]) {
      if (applied.metadata[key] !== undefined) merged.metadata[key] = applied.metadata[key];
    }
  }

  const entry: ManagedFieldsEntry = orderEntry({
    manager: options.manager,
    operation: "Apply",
    apiVersion: options.apiVersion,
    time: nowSeconds(),
    fieldsType: "FieldsV1",
    fieldsV1: appliedSet,
    subresource: status || undefined,
  });
  const others = entries.filter((e) => e !== mine);
  const index = mine ? entries.indexOf(mine) : -1;
  const ordered = index >= 0
    ? [...others.slice(0, index), entry, ...others.slice(index)]
    : [...others, entry];

  // lastAppliedUpdater: kubectl's server-side apply keeps a client-side annotation in step.
  const annotations = merged.metadata.annotations;
  if (options.manager === "kubectl" && annotations && typeof annotations[LAST_APPLIED] === "string") {
    const copy = structuredClone(applied) as KubeObject;
    if (copy.metadata?.annotations) {
      delete copy.metadata.annotations[LAST_APPLIED];
      if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
    }
    delete copy.metadata?.managedFields;
    merged.metadata.annotations = { ...annotations, [LAST_APPLIED]: sortedJson(copy) + "\n" };
  }
  merged.metadata.managedFields = finish(ordered, merged);
  return merged;
}

/** Fields of the last-applied annotation whose live value still equals it. */
function allowedFromLastApplied(current: KubeObject | undefined, options: OwnershipOptions): Path[] {
  const raw = current?.metadata.annotations?.[LAST_APPLIED];
  if (typeof raw !== "string") return [];
  let last: KubeObject;
  try {
    last = JSON.parse(raw) as KubeObject;
  } catch {
    return [];
  }
  if (!isObject(last)) return [];
  last.metadata ??= {};
  const lastScoped = scoped(last, options.scope, options.hasStatus);
  const liveScoped = current ? scoped(current, options.scope, options.hasStatus) : {};
  return leaves(fieldSet(lastScoped, options.schema, false))
    .filter((p) => JSON.stringify(valueAt(lastScoped, p)) === JSON.stringify(valueAt(liveScoped, p)));
}
