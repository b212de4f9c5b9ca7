/**
 * @module
 * The built-in resources the world serves: core/v1, apps/v1, coordination, RBAC, admission
 * registration, apiextensions, authorization reviews and the OpenShift image, build and project
 * APIs. Each carries its discovery facts, printer columns (as `kubectl get` shows them), field
 * selectors, strategic-merge keys and the validation a real server does for the fields we use.
 */
import type { FieldError } from "./status.ts";
import type { Column, KubeObject, MergeSchema, ResourceDef } from "./types.ts";
import {
  base64Problem,
  configKeyProblems,
  dig,
  isObject,
  microTimeFields,
  microTimeProblem,
  toBase64,
} from "./validation.ts";

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** `HumanDuration` of `k8s.io/apimachinery/pkg/util/duration`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 192) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) {
    return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  }
  return `${Math.floor(days / 365)}y`;
}

/** "Age" of a timestamp string relative to `now`. */
export function age(timestamp: unknown, now: number): string {
  if (typeof timestamp !== "string") return "<unknown>";
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? "<invalid>" : humanDuration(now - t);
}

const NAME_DESCRIPTION =
  "Name must be unique within a namespace. Is required when creating resources, although " +
  "some resources may allow a client to request the generation of an appropriate name automatically. Name is " +
  "primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: " +
  "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION =
  "CreationTimestamp is a timestamp representing the server time when this object was " +
  "created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not " +
  "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null " +
  "for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/** The Name column. */
export const NAME_COLUMN: Column = {
  name: "Name",
  type: "string",
  format: "name",
  description: NAME_DESCRIPTION,
  cell: (o) => o.metadata.name,
};

/** The Age column. */
export const AGE_COLUMN: Column = {
  name: "Age",
  type: "string",
  description: AGE_DESCRIPTION,
  cell: (o, now) => age(o.metadata.creationTimestamp, now),
};

const CREATED_AT: Column = {
  name: "Created At",
  type: "date",
  description: AGE_DESCRIPTION,
  cell: (o) => o.metadata.creationTimestamp,
};

function col(name: string, cell: Column["cell"], extra: Partial<Column> = {}): Column {
  return { name, type: "string", description: extra.description ?? "", cell, ...extra };
}

function count(value: unknown): number {
  if (Array.isArray(value)) return value.length;
  if (isObject(value)) return Object.keys(value).length;
  return 0;
}

// --- merge schemas (patchStrategy/patchMergeKey/listType of the Go types) ---

const byName = (items?: MergeSchema): MergeSchema => ({ mergeKey: "name", strategy: "merge", items });
const CONDITIONS: MergeSchema = { mergeKey: "type", strategy: "merge", listType: "map" };

/** Strategic-merge semantics of ObjectMeta, shared by every type. */
export const METADATA_SCHEMA: MergeSchema = {
  fields: {
    finalizers: { strategy: "merge", listType: "set" },
    ownerReferences: { mergeKey: "uid", strategy: "merge", listType: "map" },
    managedFields: { listType: "atomic" },
  },
};

const CONTAINER: MergeSchema = {
  fields: {
    env: byName(),
    ports: {
      mergeKey: "containerPort",
      strategy: "merge",
      listType: "map",
      mapKeys: ["containerPort", "protocol"],
    },
    volumeMounts: { mergeKey: "mountPath", strategy: "merge", listType: "map" },
    volumeDevices: { mergeKey: "devicePath", strategy: "merge", listType: "map" },
    resizePolicy: { listType: "atomic" },
  },
};

const POD_SPEC: MergeSchema = {
  fields: {
    containers: byName(CONTAINER),
    initContainers: byName(CONTAINER),
    ephemeralContainers: byName(CONTAINER),
    volumes: { mergeKey: "name", strategy: "merge,retainKeys" as "merge", listType: "map" },
    imagePullSecrets: byName(),
    hostAliases: { mergeKey: "ip", strategy: "merge", listType: "map" },
  },
};

function withMeta(schema: MergeSchema = {}): MergeSchema {
  return { ...schema, fields: { metadata: METADATA_SCHEMA, ...schema.fields } };
}

// --- type-specific behaviour ---

function secretDecode(o: KubeObject): string | undefined {
  if (o.data !== undefined && o.data !== null) {
    if (!isObject(o.data)) {
      return "json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8";
    }
    for (const value of Object.values(o.data)) {
      if (value === null) continue;
      const problem = base64Problem(value);
      if (problem) return problem;
    }
  }
  return undefined;
}

function secretNormalize(o: KubeObject): void {
  if (isObject(o.stringData)) {
    const data = isObject(o.data) ? o.data : {};
    for (const [k, v] of Object.entries(o.stringData)) data[k] = toBase64(String(v));
    o.data = data;
  }
  delete o.stringData;
  if (!o.type) o.type = "Opaque";
}

function dataKeyErrors(data: unknown, field: string): FieldError[] {
  const errors: FieldError[] = [];
  for (const key of Object.keys(isObject(data) ? data : {})) {
    for (const p of configKeyProblems(key)) errors.push({ type: "Invalid", field, value: key, detail: p });
  }
  return errors;
}

function secretValidate(o: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors = dataKeyErrors(o.data, "data");
  let total = 0;
  for (const v of Object.values(isObject(o.data) ? o.data : {})) {
    total += typeof v === "string" ? (v.length * 3) / 4 : 0;
  }
  if (total > 1024 * 1024) {
    errors.push({ type: "TooLong", field: "data", detail: "may not be more than 1048576 bytes" });
  }
  const data = isObject(o.data) ? o.data : {};
  if (o.type === "kubernetes.io/dockerconfigjson") {
    const raw = data[".dockerconfigjson"];
    if (typeof raw !== "string" || raw === "") {
      errors.push({ type: "Required", field: "data[.dockerconfigjson]" });
    } else {
      try {
        JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(raw)));
      } catch (e) {
        errors.push({
          type: "Invalid",
          field: "data[.dockerconfigjson]",
          value: "<secret contents redacted>",
          detail: (e as Error).message,
        });
      }
    }
  } else if (o.type === "kubernetes.io/dockercfg") {
    if (typeof data[".dockercfg"] !== "string") errors.push({ type: "Required", field: "data[.dockercfg]" });
  } else if (o.type === "kubernetes.io/service-account-token") {
    if (!o.metadata.annotations?.["kubernetes.io/service-account.name"]) {
      errors.push({ type: "Required", field: "metadata.annotations[kubernetes.io/service-account.name]" });
    }
  } else if (
    o.type === "kubernetes.io/basic-auth" || o.type === "kubernetes.io/ssh-auth" ||
    o.type === "kubernetes.io/tls"
  ) {
    if (o.type === "kubernetes.io/tls") {
      if (typeof data["tls.crt"] !== "string") errors.push({ type: "Required", field: "data[tls.crt]" });
      if (typeof data["tls.key"] !== "string") errors.push({ type: "Required", field: "data[tls.key]" });
    }
  }
  if (old && old.type !== o.type) {
    errors.push({ type: "Invalid", field: "type", value: o.type, detail: "field is immutable" });
  }
  if (old?.immutable === true) {
    if (JSON.stringify(old.data ?? {}) !== JSON.stringify(o.data ?? {})) {
      errors.push({ type: "Forbidden", field: "data", detail: "field is immutable when `immutable` is set" });
    }
  }
  return errors;
}

function namespaceNormalize(o: KubeObject, context: { old?: KubeObject }): void {
  const name = o.metadata.name;
  if (name) o.metadata.labels = { ...o.metadata.labels, "kubernetes.io/metadata.name": name };
  const spec = isObject(o.spec) ? o.spec : {};
  if (!context.old) {
    spec.finalizers ??= ["kubernetes"];
    o.spec = spec;
    o.status = { phase: "Active" };
  }
}

function leaseDecode(o: KubeObject): string | undefined {
  return microTimeFields(o, [["spec", "acquireTime"], ["spec", "renewTime"]]);
}

function eventDecode(o: KubeObject): string | undefined {
  return microTimeFields(o, [["eventTime"], ["series", "lastObservedTime"]]);
}

function eventsV1Decode(o: KubeObject): string | undefined {
  return microTimeProblem(o.eventTime) ?? microTimeFields(o, [["series", "lastObservedTime"]]);
}

function eventValidate(o: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const involved = o.involvedObject;
  if (!isObject(involved)) {
    errors.push({ type: "Required", field: "involvedObject" });
  } else if (involved.namespace && o.metadata.namespace && involved.namespace !== o.metadata.namespace) {
    errors.push({
      type: "Invalid",
      field: "involvedObject.namespace",
      value: involved.namespace,
      detail: "does not match event.namespace",
    });
  }
  return errors;
}

function configMapValidate(o: KubeObject): FieldError[] {
  return [...dataKeyErrors(o.data, "data"), ...dataKeyErrors(o.binaryData, "binaryData")];
}

function webhookConfigValidate(o: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const hooks = Array.isArray(o.webhooks) ? o.webhooks : [];
  const seen = new Set<string>();
  hooks.forEach((raw, i) => {
    const w = isObject(raw) ? raw : {};
    const at = `webhooks[${i}]`;
    if (typeof w.name !== "string" || w.name === "") errors.push({ type: "Required", field: `${at}.name` });
    else if (seen.has(w.name)) errors.push({ type: "Duplicate", field: `${at}.name`, value: w.name });
    else seen.add(w.name);
    if (!Array.isArray(w.admissionReviewVersions) || w.admissionReviewVersions.length === 0) {
      errors.push({
        type: "Required",
        field: `${at}.admissionReviewVersions`,
        detail: 'must specify one of "v1", "v1beta1"',
      });
    }
    if (w.sideEffects === undefined) {
      errors.push({
        type: "Required",
        field: `${at}.sideEffects`,
        detail: 'must specify one of "None", "NoneOnDryRun"',
      });
    }
    const cc = isObject(w.clientConfig) ? w.clientConfig : {};
    if (cc.url === undefined && cc.service === undefined) {
      errors.push({
        type: "Required",
        field: `${at}.clientConfig`,
        detail: "exactly one of url or service is required",
      });
    } else if (cc.url !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(String(cc.url));
      } catch {
        url = undefined;
      }
      if (!url || !url.host) {
        errors.push({
          type: "Invalid",
          field: `${at}.clientConfig.url`,
          value: cc.url,
          detail: "host must be specified",
        });
      } else if (url.protocol !== "https:") {
        errors.push({
          type: "Invalid",
          field: `${at}.clientConfig.url`,
          value: cc.url,
          detail: "'https' is the only allowed URL scheme",
        });
      }
    }
    if (cc.caBundle !== undefined && (typeof cc.caBundle !== "string" || base64Problem(cc.caBundle))) {
      errors.push({
        type: "Invalid",
        field: `${at}.clientConfig.caBundle`,
        value: "<omitted>",
        detail: "must be base64 encoded PEM",
      });
    }
  });
  return errors;
}

function rbacDefaults(o: KubeObject): void {
  if (Array.isArray(o.rules)) return;
  if (o.rules === undefined || o.rules === null) o.rules = [];
}

function listOfObjects(o: KubeObject, field: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    return `json: cannot unmarshal ${typeof v} into Go struct field ${o.kind}.${field} of type []v1.${
      field === "rules" ? "PolicyRule" : field === "subjects" ? "Subject" : "MutatingWebhook"
    }`;
  }
  for (const item of v) {
    if (!isObject(item)) {
      return `json: cannot unmarshal ${
        Array.isArray(item) ? "array" : typeof item
      } into Go struct field ${o.kind}.${field} of type object`;
    }
  }
  return undefined;
}

function bindingValidate(o: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const ref = isObject(o.roleRef) ? o.roleRef : {};
  if (!ref.name) errors.push({ type: "Required", field: "roleRef.name" });
  if (ref.kind !== "Role" && ref.kind !== "ClusterRole") {
    errors.push({
      type: "NotSupported",
      field: "roleRef.kind",
      value: ref.kind ?? "",
      detail: 'supported values: "Role", "ClusterRole"',
    });
  }
  if (old && JSON.stringify(old.roleRef) !== JSON.stringify(o.roleRef)) {
    errors.push({ type: "Invalid", field: "roleRef", value: o.roleRef, detail: "cannot change roleRef" });
  }
  return errors;
}

function deploymentNormalize(o: KubeObject): void {
  const spec = isObject(o.spec) ? o.spec : (o.spec = {});
  (spec as Record<string, unknown>).replicas ??= 1;
  (spec as Record<string, unknown>).revisionHistoryLimit ??= 10;
  (spec as Record<string, unknown>).progressDeadlineSeconds ??= 600;
}

function servicePorts(o: KubeObject): string {
  const ports = dig(o, "spec", "ports");
  if (!Array.isArray(ports) || ports.length === 0) return "<none>";
  return ports.map((p) => {
    const port = isObject(p) ? p : {};
    const node = port.nodePort ? `:${port.nodePort}` : "";
    return `${port.port}${node}/${port.protocol ?? "TCP"}`;
  }).join(",");
}

function podReady(o: KubeObject): string {
  const statuses = dig(o, "status", "containerStatuses");
  const containers = dig(o, "spec", "containers");
  const total = Array.isArray(containers) ? containers.length : 0;
  const ready = Array.isArray(statuses) ? statuses.filter((s) => isObject(s) && s.ready === true).length : 0;
  return `${ready}/${total}`;
}

function imageStreamTags(o: KubeObject): string {
  const tags = dig(o, "status", "tags");
  if (!Array.isArray(tags) || tags.length === 0) return "";
  return tags.map((t) => (isObject(t) ? String(t.tag) : "")).join(",");
}

function imageStreamUpdated(o: KubeObject, now: number): string {
  const tags = dig(o, "status", "tags");
  let latest = 0;
  for (const t of Array.isArray(tags) ? tags : []) {
    const items = isObject(t) && Array.isArray(t.items) ? t.items : [];
    const created = isObject(items[0]) ? Date.parse(String(items[0].created)) : NaN;
    if (!Number.isNaN(created) && created > latest) latest = created;
  }
  return latest === 0 ? "" : `${humanDuration(now - latest)} ago`;
}

function buildFrom(o: KubeObject): string {
  const strategy = dig(o, "spec", "strategy");
  const type = isObject(strategy) ? String(strategy.type ?? "") : "";
  const source = dig(o, "spec", "source");
  const from = isObject(source)
    ? (source.git ? "Git" : source.dockerfile ? "Dockerfile" : source.binary ? "Binary" : "")
    : "";
  return from || (type === "" ? "" : "");
}

function buildDuration(o: KubeObject): string {
  const d = dig(o, "status", "duration");
  if (typeof d === "number") return `${Math.round(d / 1e9)}s`;
  const start = Date.parse(String(dig(o, "status", "startTimestamp")));
  const end = Date.parse(String(dig(o, "status", "completionTimestamp")));
  if (!Number.isNaN(start) && !Number.isNaN(end)) return `${Math.round((end - start) / 1000)}s`;
  return "";
}

interface BuiltinSpec {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  singular?: string;
  shortNames?: string[];
  categories?: string[];
  verbs?: string[];
  subresources?: ResourceDef["subresources"];
  statusSubresource?: boolean;
  generation?: boolean;
  createOnly?: boolean;
  returnDeletedObject?: boolean;
  nameRule?: ResourceDef["nameRule"];
  fieldSelectors?: ResourceDef["fieldSelectors"];
  customFieldLabels?: boolean;
  columns?: Column[];
  strategic?: MergeSchema;
  decode?: ResourceDef["decode"];
  normalize?: ResourceDef["normalize"];
  validate?: ResourceDef["validate"];
}

function builtin(spec: BuiltinSpec): ResourceDef {
  const subresources = { ...spec.subresources };
  if (spec.statusSubresource) subresources.status ??= { kind: spec.kind, verbs: ["get", "patch", "update"] };
  const nameSelectors: ResourceDef["fieldSelectors"] = { "metadata.name": (o) => o.metadata.name };
  if (spec.namespaced) nameSelectors["metadata.namespace"] = (o) => o.metadata.namespace;
  return {
    group: spec.group,
    version: spec.version,
    plural: spec.plural,
    singular: spec.singular ?? spec.kind.toLowerCase(),
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    namespaced: spec.namespaced,
    shortNames: spec.shortNames ?? [],
    categories: spec.categories ?? [],
    verbs: spec.verbs ?? ALL_VERBS,
    subresources,
    storageKey: `${spec.group}/${spec.plural}`,
    storageVersion: spec.group ? `${spec.group}/${spec.version}` : spec.version,
    statusSubresource: spec.statusSubresource ?? false,
    generation: spec.generation ?? false,
    createOnly: spec.createOnly ?? false,
    returnDeletedObject: spec.returnDeletedObject ?? false,
    nameRule: spec.nameRule ?? "subdomain",
    fieldSelectors: { ...nameSelectors, ...spec.fieldSelectors },
    customFieldLabels: spec.customFieldLabels ?? false,
    columns: spec.columns ?? [NAME_COLUMN, AGE_COLUMN],
    strategic: withMeta(spec.strategic),
    decode: spec.decode,
    normalize: spec.normalize,
    validate: spec.validate,
  };
}

function review(group: string, plural: string, kind: string, namespaced = false): ResourceDef {
  return builtin({
    group,
    version: "v1",
    plural,
    kind,
    namespaced,
    verbs: ["create"],
    createOnly: true,
    nameRule: "path",
  });
}

/** Every built-in resource the world serves, in discovery order. */
export function builtinResources(): ResourceDef[] {
  const eventColumns: Column[] = [
    col("Last Seen", (o, now) => age(o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp, now)),
    col("Type", (o) => o.type),
    col("Reason", (o) => o.reason),
    col("Object", (o) => {
      const inv = isObject(o.involvedObject) ? o.involvedObject : {};
      return `${String(inv.kind ?? "").toLowerCase()}/${inv.name ?? ""}`;
    }),
    col("Subobject", (o) => dig(o, "involvedObject", "fieldPath") ?? "", { priority: 1 }),
    col("Source", (o) => dig(o, "source", "component") ?? o.reportingComponent ?? "", { priority: 1 }),
    col("Message", (o) => o.message),
    col("First Seen", (o, now) => age(o.firstTimestamp ?? o.eventTime, now), { priority: 1 }),
    col("Count", (o) => o.count ?? 1, { type: "integer", priority: 1 }),
    col("Name", (o) => o.metadata.name, { priority: 1 }),
  ];
  const bindingColumns = (kind: string): Column[] =>
    [
      NAME_COLUMN,
      col("Role", (o) => `${dig(o, "roleRef", "kind")}/${dig(o, "roleRef", "name")}`),
      AGE_COLUMN,
      col("Users", (o) => subjects(o, "User"), { priority: 1 }),
      col("Groups", (o) => subjects(o, "Group"), { priority: 1 }),
      col("ServiceAccounts", (o) => subjects(o, "ServiceAccount"), { priority: 1 }),
    ].filter(() => kind !== "");
  const podColumns: Column[] = [
    NAME_COLUMN,
    col("Ready", podReady),
    col("Status", (o) => dig(o, "status", "phase") ?? "Pending"),
    col("Restarts", () => 0, { type: "string" }),
    AGE_COLUMN,
    col("IP", (o) => dig(o, "status", "podIP") ?? "<none>", { priority: 1 }),
    col("Node", (o) => dig(o, "spec", "nodeName") ?? "<none>", { priority: 1 }),
  ];
  return [
    builtin({
      group: "",
      version: "v1",
      plural: "namespaces",
      kind: "Namespace",
      namespaced: false,
      shortNames: ["ns"],
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      statusSubresource: true,
      subresources: { finalize: { kind: "Namespace", verbs: ["update"] } },
      returnDeletedObject: true,
      nameRule: "label",
      fieldSelectors: { "status.phase": (o) => dig(o, "status", "phase") as string | undefined },
      customFieldLabels: true,
      columns: [
        NAME_COLUMN,
        col("Status", (o) => dig(o, "status", "phase"), { description: "The status of the namespace" }),
        AGE_COLUMN,
      ],
      strategic: { fields: { status: { fields: { conditions: CONDITIONS } } } },
      normalize: namespaceNormalize,
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "serviceaccounts",
      kind: "ServiceAccount",
      namespaced: true,
      shortNames: ["sa"],
      returnDeletedObject: true,
      columns: [NAME_COLUMN, col("Secrets", (o) => count(o.secrets), { type: "integer" }), AGE_COLUMN],
      strategic: { fields: { secrets: byName(), imagePullSecrets: { ...byName(), listType: "atomic" } } },
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "secrets",
      kind: "Secret",
      namespaced: true,
      fieldSelectors: { type: (o) => o.type as string | undefined },
      customFieldLabels: true,
      columns: [
        NAME_COLUMN,
        col("Type", (o) => o.type),
        col("Data", (o) => count(o.data), { type: "integer" }),
        AGE_COLUMN,
      ],
      decode: secretDecode,
      normalize: secretNormalize,
      validate: secretValidate,
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "configmaps",
      kind: "ConfigMap",
      namespaced: true,
      shortNames: ["cm"],
      columns: [
        NAME_COLUMN,
        col("Data", (o) => count(o.data) + count(o.binaryData), { type: "integer" }),
        AGE_COLUMN,
      ],
      validate: configMapValidate,
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "events",
      kind: "Event",
      namespaced: true,
      shortNames: ["ev"],
      fieldSelectors: Object.fromEntries(
        [
          "involvedObject.kind",
          "involvedObject.namespace",
          "involvedObject.name",
          "involvedObject.uid",
          "involvedObject.apiVersion",
          "involvedObject.resourceVersion",
          "involvedObject.fieldPath",
        ].map((
          f,
        ) => [
          f,
          (o: KubeObject) => dig(o, "involvedObject", f.split(".")[1] as string) as string | undefined,
        ])
          .concat([
            ["reason", (o: KubeObject) => o.reason as string | undefined],
            ["reportingComponent", (o: KubeObject) => o.reportingComponent as string | undefined],
            ["source", (o: KubeObject) => dig(o, "source", "component") as string | undefined],
            ["type", (o: KubeObject) => o.type as string | undefined],
          ]),
      ),
      customFieldLabels: true,
      columns: eventColumns,
      decode: eventDecode,
      validate: eventValidate,
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "services",
      kind: "Service",
      namespaced: true,
      shortNames: ["svc"],
      categories: ["all"],
      statusSubresource: true,
      returnDeletedObject: true,
      nameRule: "label",
      fieldSelectors: {
        "spec.clusterIP": (o) => dig(o, "spec", "clusterIP") as string | undefined,
        "spec.type": (o) => dig(o, "spec", "type") as string | undefined,
      },
      customFieldLabels: true,
      columns: [
        NAME_COLUMN,
        col("Type", (o) => dig(o, "spec", "type") ?? "ClusterIP"),
        col("Cluster-IP", (o) => dig(o, "spec", "clusterIP") ?? "<none>"),
        col("External-IP", () => "<none>"),
        col("Port(s)", servicePorts),
        AGE_COLUMN,
        col(
          "Selector",
          (o) =>
            Object.entries((dig(o, "spec", "selector") ?? {}) as Record<string, string>).map(([k, v]) =>
              `${k}=${v}`
            ).join(",") || "<none>",
          { priority: 1 },
        ),
      ],
      strategic: {
        fields: {
          spec: {
            fields: {
              ports: { mergeKey: "port", strategy: "merge", listType: "map", mapKeys: ["port", "protocol"] },
            },
          },
        },
      },
    }),
    builtin({
      group: "",
      version: "v1",
      plural: "pods",
      kind: "Pod",
      namespaced: true,
      shortNames: ["po"],
      categories: ["all"],
      statusSubresource: true,
      returnDeletedObject: true,
      fieldSelectors: {
        "spec.nodeName": (o) => dig(o, "spec", "nodeName") as string | undefined,
        "spec.serviceAccountName": (o) => dig(o, "spec", "serviceAccountName") as string | undefined,
        "status.phase": (o) => dig(o, "status", "phase") as string | undefined,
      },
      customFieldLabels: true,
      columns: podColumns,
      strategic: { fields: { spec: POD_SPEC, status: { fields: { conditions: CONDITIONS } } } },
    }),
    builtin({
      group: "apps",
      version: "v1",
      plural: "deployments",
      kind: "Deployment",
      namespaced: true,
      shortNames: ["deploy"],
      categories: ["all"],
      statusSubresource: true,
      generation: true,
      subresources: { scale: { kind: "Scale", verbs: ["get", "patch", "update"] } },
      columns: [
        NAME_COLUMN,
        col("Ready", (o) => `${dig(o, "status", "readyReplicas") ?? 0}/${dig(o, "spec", "replicas") ?? 1}`),
        col("Up-to-date", (o) => dig(o, "status", "updatedReplicas") ?? 0, { type: "integer" }),
        col("Available", (o) => dig(o, "status", "availableReplicas") ?? 0, { type: "integer" }),
        AGE_COLUMN,
        col("Containers", (o) => containerField(o, "name"), { priority: 1 }),
        col("Images", (o) => containerField(o, "image"), { priority: 1 }),
      ],
      strategic: {
        fields: {
          spec: { fields: { template: { fields: { metadata: METADATA_SCHEMA, spec: POD_SPEC } } } },
          status: { fields: { conditions: CONDITIONS } },
        },
      },
      normalize: deploymentNormalize,
    }),
    builtin({
      group: "coordination.k8s.io",
      version: "v1",
      plural: "leases",
      kind: "Lease",
      namespaced: true,
      columns: [NAME_COLUMN, col("Holder", (o) => dig(o, "spec", "holderIdentity") ?? ""), AGE_COLUMN],
      decode: leaseDecode,
    }),
    builtin({
      group: "events.k8s.io",
      version: "v1",
      plural: "events",
      kind: "Event",
      namespaced: true,
      shortNames: ["ev"],
      decode: eventsV1Decode,
    }),
    builtin({
      group: "rbac.authorization.k8s.io",
      version: "v1",
      plural: "clusterroles",
      kind: "ClusterRole",
      namespaced: false,
      nameRule: "path",
      columns: [NAME_COLUMN, CREATED_AT],
      decode: (o) => listOfObjects(o, "rules"),
      normalize: rbacDefaults,
    }),
    builtin({
      group: "rbac.authorization.k8s.io",
      version: "v1",
      plural: "clusterrolebindings",
      kind: "ClusterRoleBinding",
      namespaced: false,
      nameRule: "path",
      columns: bindingColumns("ClusterRoleBinding"),
      decode: (o) => listOfObjects(o, "subjects"),
      validate: bindingValidate,
    }),
    builtin({
      group: "rbac.authorization.k8s.io",
      version: "v1",
      plural: "roles",
      kind: "Role",
      namespaced: true,
      nameRule: "path",
      columns: [NAME_COLUMN, CREATED_AT],
      decode: (o) => listOfObjects(o, "rules"),
      normalize: rbacDefaults,
    }),
    builtin({
      group: "rbac.authorization.k8s.io",
      version: "v1",
      plural: "rolebindings",
      kind: "RoleBinding",
      namespaced: true,
      nameRule: "path",
      columns: bindingColumns("RoleBinding"),
      decode: (o) => listOfObjects(o, "subjects"),
      validate: bindingValidate,
    }),
    builtin({
      group: "admissionregistration.k8s.io",
      version: "v1",
      plural: "mutatingwebhookconfigurations",
      kind: "MutatingWebhookConfiguration",
      namespaced: false,
      categories: ["api-extensions"],
      columns: [NAME_COLUMN, col("Webhooks", (o) => count(o.webhooks), { type: "integer" }), AGE_COLUMN],
      strategic: { fields: { webhooks: { mergeKey: "name", strategy: "merge", listType: "map" } } },
      decode: (o) => listOfObjects(o, "webhooks"),
      normalize: webhookDefaults,
      validate: webhookConfigValidate,
    }),
    builtin({
      group: "admissionregistration.k8s.io",
      version: "v1",
      plural: "validatingwebhookconfigurations",
      kind: "ValidatingWebhookConfiguration",
      namespaced: false,
      categories: ["api-extensions"],
      columns: [NAME_COLUMN, col("Webhooks", (o) => count(o.webhooks), { type: "integer" }), AGE_COLUMN],
      strategic: { fields: { webhooks: { mergeKey: "name", strategy: "merge", listType: "map" } } },
      decode: (o) => listOfObjects(o, "webhooks"),
      normalize: webhookDefaults,
      validate: webhookConfigValidate,
    }),
    builtin({
      group: "apiextensions.k8s.io",
      version: "v1",
      plural: "customresourcedefinitions",
      kind: "CustomResourceDefinition",
      namespaced: false,
      shortNames: ["crd", "crds"],
      categories: ["api-extensions"],
      statusSubresource: true,
      generation: true,
      columns: [NAME_COLUMN, CREATED_AT],
      strategic: { fields: { status: { fields: { conditions: CONDITIONS } } } },
    }),
    review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
    review("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview", true),
    builtin({
      group: "image.openshift.io",
      version: "v1",
      plural: "imagestreams",
      kind: "ImageStream",
      namespaced: true,
      shortNames: ["is"],
      categories: ["all"],
      statusSubresource: true,
      generation: true,
      subresources: {
        secrets: { kind: "SecretList", verbs: ["get"] },
        layers: { kind: "ImageStreamLayers", verbs: ["get"] },
      },
      columns: [
        NAME_COLUMN,
        col(
          "Image Repository",
          (o) =>
            dig(o, "status", "publicDockerImageRepository") ?? dig(o, "status", "dockerImageRepository") ??
              "",
        ),
        col("Tags", imageStreamTags),
        col("Updated", imageStreamUpdated),
      ],
      strategic: {
        fields: {
          spec: { fields: { tags: byName() } },
          status: { fields: { tags: { mergeKey: "tag", strategy: "merge", listType: "map" } } },
        },
      },
    }),
    builtin({
      group: "image.openshift.io",
      version: "v1",
      plural: "imagestreamimports",
      kind: "ImageStreamImport",
      namespaced: true,
      verbs: ["create"],
      createOnly: true,
    }),
    builtin({
      group: "build.openshift.io",
      version: "v1",
      plural: "builds",
      kind: "Build",
      namespaced: true,
      categories: ["all"],
      statusSubresource: true,
      generation: true,
      subresources: {
        clone: { kind: "BuildRequest", verbs: ["create"] },
        details: { kind: "Build", verbs: ["update"] },
        log: { kind: "BuildLog", verbs: ["get"] },
      },
      fieldSelectors: {
        status: (o) => dig(o, "status", "phase") as string | undefined,
        podName: (o) => `${o.metadata.name}-build`,
      },
      customFieldLabels: true,
      columns: [
        NAME_COLUMN,
        col("Type", (o) => dig(o, "spec", "strategy", "type") ?? ""),
        col("From", buildFrom),
        col("Status", (o) => dig(o, "status", "phase") ?? "New"),
        col("Started", (o, now) => {
          const s = dig(o, "status", "startTimestamp");
          return typeof s === "string" ? `${age(s, now)} ago` : "";
        }),
        col("Duration", buildDuration),
      ],
      strategic: {},
    }),
    builtin({
      group: "build.openshift.io",
      version: "v1",
      plural: "buildconfigs",
      kind: "BuildConfig",
      namespaced: true,
      shortNames: ["bc"],
      categories: ["all"],
      statusSubresource: true,
      generation: true,
      subresources: {
        instantiate: { kind: "BuildRequest", verbs: ["create"] },
        instantiatebinary: { kind: "BinaryBuildRequestOptions", verbs: ["create"] },
        webhooks: { kind: "Build", verbs: ["create"] },
      },
      columns: [
        NAME_COLUMN,
        col("Type", (o) => dig(o, "spec", "strategy", "type") ?? ""),
        col("From", buildFrom),
        col("Latest", (o) => dig(o, "status", "lastVersion") ?? 0, { type: "integer" }),
      ],
      strategic: { fields: { spec: { fields: { triggers: { listType: "atomic" } } } } },
    }),
  ];
}

function webhookDefaults(o: KubeObject): void {
  if (!Array.isArray(o.webhooks)) return;
  for (const w of o.webhooks) {
    if (!isObject(w)) continue;
    w.failurePolicy ??= "Fail";
    w.matchPolicy ??= "Equivalent";
    w.timeoutSeconds ??= 10;
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
    if (o.kind === "MutatingWebhookConfiguration") w.reinvocationPolicy ??= "Never";
    const cc = isObject(w.clientConfig) ? w.clientConfig : undefined;
    if (cc && isObject(cc.service)) cc.service.port ??= 443;
    if (Array.isArray(w.rules)) {
      for (const rule of w.rules) if (isObject(rule)) rule.scope ??= "*";
    }
  }
}

function subjects(o: KubeObject, kind: string): string {
  const list = Array.isArray(o.subjects) ? o.subjects : [];
  return list.filter((s) => isObject(s) && s.kind === kind)
    .map((
      s,
    ) => (kind === "ServiceAccount"
      ? `${(s as Record<string, unknown>).namespace}/${(s as Record<string, unknown>).name}`
      : String((s as Record<string, unknown>).name))
    )
    .join(", ");
}

function containerField(o: KubeObject, field: string): string {
  const containers = dig(o, "spec", "template", "spec", "containers");
  return (Array.isArray(containers) ? containers : []).map((c) => (isObject(c) ? String(c[field] ?? "") : ""))
    .join(",");
}
