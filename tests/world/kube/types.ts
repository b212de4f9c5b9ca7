/**
 * @module
 * The test world's model of an API resource: what discovery says about it, how its objects are
 * stored, validated, patched, printed and selected. Built-in types are declared in `builtin.ts`;
 * CustomResourceDefinitions become the same structure in `crd.ts`.
 */
import type { FieldError } from "./status.ts";

/** Any object the world stores. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** `metav1.ObjectMeta` as far as the world reads it. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<Record<string, unknown>>;
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
  [key: string]: unknown;
}

/** A `metav1.ManagedFieldsEntry`. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time?: string;
  fieldsType: "FieldsV1";
  fieldsV1: FieldsV1;
  subresource?: string;
}

/** A FieldsV1 trie: keys `f:<field>`, `k:<json key>`, `v:<json value>`, `i:<index>` and `.`. */
export interface FieldsV1 {
  [key: string]: FieldsV1;
}

/**
 * How a part of an object merges, for strategic merge patch and server-side apply: the meaning of
 * the Go struct tags `patchStrategy`, `patchMergeKey`, `listType`, `listMapKeys`, `mapType`.
 */
export interface MergeSchema {
  /** Known members of an object. */
  fields?: Record<string, MergeSchema>;
  /** Schema of every member of a map (`additionalProperties`). */
  values?: MergeSchema;
  /** Schema of list items. */
  items?: MergeSchema;
  /** Strategic merge patch: list items merged by this member. */
  mergeKey?: string;
  /** Strategic merge patch strategy of a list. */
  strategy?: "merge" | "replace" | "retainKeys";
  /** Server-side apply list semantics. */
  listType?: "atomic" | "set" | "map";
  /** Keys of a `map` list (defaults to `[mergeKey]`). */
  mapKeys?: string[];
  /** An object replaced as a whole by apply. */
  atomic?: boolean;
}

/** One Table column with the function that fills its cell. */
export interface Column {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  format?: string;
  description?: string;
  priority?: number;
  cell: (object: KubeObject, now: number) => unknown;
}

/** Everything the world knows about one group/version/resource. */
export interface ResourceDef {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Verbs listed in discovery. */
  verbs: string[];
  /** Subresources listed in discovery and routed (`status`, `finalize`, `instantiate`, ...). */
  subresources: Record<string, { kind: string; verbs: string[] }>;
  /** Storage shared by every version of the resource: `<group>/<plural>`. */
  storageKey: string;
  /** Served from a CustomResourceDefinition (its group's unknown paths answer a plain-text 404). */
  fromCrd?: boolean;
  /** The apiVersion objects are stored in. */
  storageVersion: string;
  /** `status` is a subresource: the main endpoint ignores status, `/status` ignores the rest. */
  statusSubresource: boolean;
  /** Objects carry `metadata.generation`, bumped on changes outside metadata and status. */
  generation: boolean;
  /** No storage: POST answers a computed object (reviews, virtual creates through hooks). */
  createOnly: boolean;
  /** DELETE answers the object rather than a Success Status. */
  returnDeletedObject: boolean;
  /** Name validation: DNS-1123 subdomain, label, path segment, or none. */
  nameRule: "subdomain" | "label" | "path";
  /** Fields accepted by field selectors (besides none), with their extractors. */
  fieldSelectors: Record<string, (object: KubeObject) => string | undefined>;
  /** Whether an unknown field label is reported with the short "field label not supported" text. */
  customFieldLabels: boolean;
  /** Table columns (after Name). */
  columns: Column[];
  /** Merge semantics; `undefined` where strategic merge patch is not supported (custom resources). */
  strategic: MergeSchema | undefined;
  /** Merge semantics for server-side apply (defaults to `strategic`). */
  applySchema?: MergeSchema;
  /** Decoding checks that a real server makes while parsing (400 "cannot be handled as"). */
  decode?: (object: KubeObject) => string | undefined;
  /** Normalises a decoded object (defaults, folding of `stringData`, ...). */
  normalize?: (object: KubeObject, context: { old?: KubeObject }) => void;
  /** Type-specific validation (422). */
  validate?: (object: KubeObject, old: KubeObject | undefined) => FieldError[];
  /** Set for custom resources. */
  custom?: CustomInfo;
}

/** What a CustomResourceDefinition adds to a resource. */
export interface CustomInfo {
  crdName: string;
  /** Validates, defaults and prunes an object in place; returns problems and pruned paths. */
  process(object: KubeObject): { errors: FieldError[]; unknown: string[] };
  /** The schema of the status subresource, if any. */
  hasStatus: boolean;
}

/** The API group and version an object is addressed by. */
export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

/** The `group/resource` as RBAC and messages name it. */
export function qualifiedOf(def: ResourceDef): { resource: string; group: string } {
  return { resource: def.plural, group: def.group };
}
