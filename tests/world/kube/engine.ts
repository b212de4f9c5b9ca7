/**
 * @module
 * The API server's request path: authentication by bearer token, request info as kube-apiserver's
 * `RequestInfoFactory` derives it, RBAC, discovery, and the REST verbs (get, list, watch, create,
 * update, patch in four formats, delete, deletecollection) with their metadata semantics:
 * resourceVersion preconditions, generation, status subresources, finalizers and deletion,
 * namespace lifecycle, dry runs, managed fields, admission and validation, in the order a real
 * server runs them. Every failure is answered with a `v1` Status.
 */
import { parse as parseYaml } from "yaml";
import { Admission } from "./admission.ts";
import { builtinResources } from "./builtin.ts";
import { crdDefaultsAndStatus, crdResources, validateCrd } from "./crd.ts";
import { HookTable } from "./hooks.ts";
import { recordUpdate, serverSideApply } from "./managed_fields.ts";
import { decodeProtobufObject, ProtobufError } from "./protobuf.ts";
import { openApiDocument, openApiIndex } from "./openapi.ts";
import { applyJsonPatch, mergePatch, strategicMerge } from "./patch.ts";
import { type Attributes, Authorizer, defaultRbac, forbiddenText, type UserInfo } from "./rbac.ts";
import { Registry } from "./registry.ts";
import { parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.ts";
import {
  alreadyExists,
  badRequest,
  cannotHandle,
  conflict,
  expired,
  type FieldError,
  forbidden,
  internalError,
  invalid,
  KubeStatusError,
  methodNotAllowed,
  notFound,
  pathNotFound,
  successStatus,
  tooLarge,
  unauthorized,
  unsupportedMediaType,
} from "./status.ts";
import { canonical, type Entry, Store } from "./store.ts";
import { type IncludeObject, partialOf, representationOf, tableOf } from "./table.ts";
import { apiVersionOf, type KubeObject, qualifiedOf, type ResourceDef } from "./types.ts";
import { isObject, validateMetadata, validateMetadataUpdate } from "./validation.ts";
import { type Selection, selects, WatchStream } from "./watch.ts";

/** Largest request body kube-apiserver accepts. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

const NAMESPACES = "/namespaces";
const CRDS = "apiextensions.k8s.io/customresourcedefinitions";
const CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io";
const PROTECTED_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);
const BODY_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];

/** Options of the engine. */
export interface EngineOptions {
  watchHistory: number;
  serviceEndpoints: Map<string, string>;
  bookmarkIntervalMs: number;
  watchExpiredAs: "event" | "http";
}

/** What kube-apiserver's RequestInfoFactory derives from a request. */
export interface RequestInfo {
  path: string;
  resourceRequest: boolean;
  verb: string;
  group: string;
  version: string;
  namespace: string;
  resource: string;
  name: string;
  subresource: string;
  extraParts: boolean;
}

const encoder = new TextEncoder();

/** A JSON response written in one chunk (see docs/runtime.md on Deno.serve's TLS stall). */
export function jsonText(status: number, text: string, headers: Record<string, string> = {}): Response {
  const bytes = encoder.encode(text);
  const body = bytes.byteLength === 0 ? null : new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  return new Response(body, {
    status,
    headers: { "content-type": "application/json", "content-length": String(bytes.byteLength), ...headers },
  });
}

/** A JSON response of `value`. */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return jsonText(status, JSON.stringify(value), headers);
}

function statusResponse(error: KubeStatusError, headers: Record<string, string> = {}): Response {
  return json(error.code, error.toStatus(), { ...error.headers, ...headers });
}

function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return Array.from(bytes, (b) => NAME_CHARS[b % NAME_CHARS.length]).join("");
}

function warningHeader(messages: string[]): Record<string, string> {
  if (messages.length === 0) return {};
  return { warning: messages.map((m) => `299 - ${JSON.stringify(m)}`).join(", ") };
}

/** Parses the request path as `RequestInfoFactory.NewRequestInfo` does. */
export function requestInfo(method: string, url: URL): RequestInfo {
  const info: RequestInfo = {
    path: url.pathname,
    resourceRequest: false,
    verb: method.toLowerCase(),
    group: "",
    version: "",
    namespace: "",
    resource: "",
    name: "",
    subresource: "",
    extraParts: false,
  };
  const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    info.version = parts[1] as string;
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    info.group = parts[1] as string;
    info.version = parts[2] as string;
    rest = parts.slice(3);
  } else {
    return info;
  }
  info.resourceRequest = true;
  let watchPath = false;
  if (rest[0] === "watch") {
    watchPath = true;
    rest = rest.slice(1);
  }
  if (rest[0] === "namespaces") {
    if (rest.length > 1) {
      info.namespace = rest[1] as string;
      if (rest.length > 2 && rest[2] !== "status" && rest[2] !== "finalize") rest = rest.slice(2);
    }
  }
  info.resource = rest[0] ?? "";
  info.name = rest[1] ?? "";
  info.subresource = rest[2] ?? "";
  info.extraParts = rest.length > 3;
  const watch = url.searchParams.get("watch");
  const wantsWatch = watchPath || watch === "true" || watch === "1";
  switch (method) {
    case "GET":
    case "HEAD":
      info.verb = wantsWatch ? "watch" : info.name ? "get" : "list";
      break;
    case "POST":
      info.verb = "create";
      break;
    case "PUT":
      info.verb = "update";
      break;
    case "PATCH":
      info.verb = "patch";
      break;
    case "DELETE":
      info.verb = info.name ? "delete" : "deletecollection";
      break;
    default:
      info.verb = method.toLowerCase();
  }
  // A namespace is addressed as its own namespace, so RoleBindings in it apply.
  if (info.resource === "namespaces" && info.group === "" && info.name && !info.namespace) {
    info.namespace = info.name;
  }
  return info;
}

/** Options of a write inside the engine. */
interface WriteContext {
  user: UserInfo;
  query: URLSearchParams;
  dryRun: boolean;
  manager: string;
  warnings: string[];
}

/** The API server core of a world. */
export class Engine {
  readonly store: Store;
  readonly registry = new Registry();
  readonly authorizer: Authorizer;
  readonly admission: Admission;
  readonly hooks = new HookTable();
  readonly tokens = new Map<string, UserInfo>();
  readonly counts = new Map<string, number>();
  readonly options: EngineOptions;
  serverAddress = "127.0.0.1";
  readonly #watches = new Set<WatchStream>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #bookmarkTimer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(options: EngineOptions) {
    this.options = options;
    this.store = new Store({ historySize: options.watchHistory });
    this.authorizer = new Authorizer(this.store);
    this.admission = new Admission(this.store, options.serviceEndpoints);
    for (const def of builtinResources()) this.registry.add(def);
    for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
      this.load({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
    }
    for (const object of defaultRbac()) this.load(object);
    this.#bookmarkTimer = setInterval(() => {
      for (const w of this.#watches) w.bookmark();
    }, options.bookmarkIntervalMs);
  }

  /** Ends every watch and timer. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#bookmarkTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const w of [...this.#watches]) w.close({ bookmark: false });
  }

  /** Runs `fn` soon, unless the world closes first. */
  #later(fn: () => void, ms = 0): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(t);
  }

  #count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /**
   * Stores objects directly, as if they had always been there: no authentication, admission or
   * events beyond the store's own. Fills system fields; validates nothing but the type's normalisation.
   */
  load(object: KubeObject): Entry {
    const def = this.#defForObject(object);
    const copy = structuredClone(object);
    copy.apiVersion = def.storageVersion;
    copy.kind = def.kind;
    const existing = this.store.get(
      def.storageKey,
      def.namespaced ? copy.metadata.namespace ?? "" : "",
      copy.metadata.name ?? "",
    );
    def.normalize?.(copy, {});
    copy.metadata.uid ??= existing?.object.metadata.uid ?? crypto.randomUUID();
    copy.metadata.creationTimestamp ??= existing?.object.metadata.creationTimestamp;
    copy.metadata.creationTimestamp ??= nowSeconds();
    if (def.generation) copy.metadata.generation ??= 1;
    if (def.custom) def.custom.process(copy);
    if (def.plural === "customresourcedefinitions" && def.group === "apiextensions.k8s.io") {
      crdDefaultsAndStatus(copy, nowSeconds());
      copy.metadata.finalizers = [...new Set([...(copy.metadata.finalizers ?? []), CRD_FINALIZER])];
    }
    const entry = this.store.put(
      def.storageKey,
      copy,
      this.store.get(def.storageKey, copy.metadata.namespace ?? "", copy.metadata.name ?? "")
        ? "MODIFIED"
        : "ADDED",
    );
    if (def.storageKey === CRDS) this.#registerCrd(entry.object);
    return entry;
  }

  #defForObject(object: KubeObject): ResourceDef {
    const [group, version] = (object.apiVersion ?? "").includes("/")
      ? (object.apiVersion as string).split("/") as [string, string]
      : ["", object.apiVersion ?? "v1"];
    const def = this.registry.all().find((d) =>
      d.group === group && d.version === version && d.kind === object.kind
    );
    if (!def) throw new Error(`no resource serves ${object.apiVersion} ${object.kind}`);
    return def;
  }

  /** Answers one HTTP request. */
  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let info: RequestInfo | undefined;
    try {
      const user = this.#impersonate(request, this.#authenticate(request));
      info = requestInfo(request.method, url);
      this.#count(this.#countKey(info));
      const attributes: Attributes = {
        user,
        verb: info.resourceRequest
          ? info.verb
          : request.method.toLowerCase() === "head"
          ? "get"
          : request.method.toLowerCase(),
        resourceRequest: info.resourceRequest,
        apiGroup: info.group,
        resource: info.resource,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name,
        path: url.pathname,
      };
      const decision = this.authorizer.authorize(attributes);
      if (!decision.allowed) {
        const text = forbiddenText(attributes, decision.reason);
        throw forbidden(
          info.resourceRequest
            ? { resource: { resource: info.resource, group: info.group }, name: info.name }
            : undefined,
          text,
        );
      }
      if (!info.resourceRequest) return await this.#nonResource(request, url);
      return await this.#resource(request, url, info, user);
    } catch (error) {
      if (error instanceof KubeStatusError) return statusResponse(error);
      if (error instanceof SelectorError) return statusResponse(badRequest(error.message));
      return statusResponse(internalError((error as Error)?.message ?? String(error)));
    }
  }

  #countKey(info: RequestInfo): string {
    if (!info.resourceRequest) return `GET ${info.path}`;
    const gv = info.group ? `${info.group}/${info.version}` : info.version;
    return `${info.verb.toUpperCase()} ${gv}/${info.resource}${
      info.subresource ? `/${info.subresource}` : ""
    }`;
  }

  #authenticate(request: Request): UserInfo {
    const header = request.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthorized();
    const user = this.tokens.get(m[1] as string);
    if (!user) throw unauthorized();
    return user;
  }

  /** `Impersonate-User`/`Impersonate-Group` headers (kubectl `--as`), authorised by the `impersonate` verb. */
  #impersonate(request: Request, user: UserInfo): UserInfo {
    const as = request.headers.get("impersonate-user");
    const groups = request.headers.get("impersonate-group");
    if (!as && !groups) return user;
    const check = (resource: string, name: string, namespace = "") => {
      const attributes: Attributes = {
        user,
        verb: "impersonate",
        resourceRequest: true,
        apiGroup: "",
        resource,
        subresource: "",
        namespace,
        name,
        path: "",
      };
      const decision = this.authorizer.authorize(attributes);
      if (!decision.allowed) {
        throw forbidden(
          { resource: { resource, group: "" }, name },
          forbiddenText(attributes, decision.reason),
        );
      }
    };
    if (!as) throw badRequest("requested impersonation of groups without a user");
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(as);
    if (sa) check("serviceaccounts", sa[2] as string, sa[1] as string);
    else check("users", as);
    const asGroups = groups ? groups.split(",").map((g) => g.trim()).filter((g) => g !== "") : [];
    for (const g of asGroups) check("groups", g);
    const all = [...asGroups];
    if (sa) all.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]}`);
    if (!all.includes("system:authenticated")) all.push("system:authenticated");
    return { username: as, groups: all };
  }

  // --- non-resource paths: version, health, discovery, openapi ---

  async #nonResource(request: Request, url: URL): Promise<Response> {
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const parts = path.split("/").filter((p) => p !== "");
    if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowedText();
    if (path === "/version") {
      return json(200, {
        major: "1",
        minor: "32",
        gitVersion: "v1.32.4-quay-bridge-world",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.23.5",
        compiler: "gc",
        platform: "linux/amd64",
      });
    }
    if (path === "/healthz" || path === "/livez" || path === "/readyz") {
      return new Response("ok", { headers: { "content-type": "text/plain; charset=utf-8" } });
    }
    if (path === "/api") return json(200, this.registry.apiVersions(this.serverAddress));
    if (parts[0] === "api" && parts.length === 2) {
      const list = this.registry.resourceList("", parts[1] as string);
      return list ? json(200, list) : notFoundText();
    }
    if (path === "/apis") return json(200, this.registry.groupList());
    if (parts[0] === "apis" && parts.length === 2) {
      const group = this.registry.group(parts[1] as string);
      return group ? json(200, group) : notFoundText();
    }
    if (parts[0] === "apis" && parts.length === 3) {
      const list = this.registry.resourceList(parts[1] as string, parts[2] as string);
      return list ? json(200, list) : notFoundText();
    }
    if (path === "/openapi/v3") return json(200, await openApiIndex(this.registry));
    if (parts[0] === "openapi" && parts[1] === "v3" && (parts[2] === "api" || parts[2] === "apis")) {
      const [group, version] = parts[2] === "api" ? ["", parts[3] ?? ""] : [parts[3] ?? "", parts[4] ?? ""];
      const doc = openApiDocument(this.registry, group, version);
      if (doc) return json(200, doc);
    }
    return notFoundText();
  }

  // --- resources ---

  async #resource(request: Request, url: URL, info: RequestInfo, user: UserInfo): Promise<Response> {
    if (info.extraParts) throw pathNotFound();
    const def = this.registry.find(info.group, info.version, info.resource);
    if (!def) {
      // kube-apiserver answers a Status for the core group and built-in groups, but a plain-text
      // "404 page not found" for group/versions it does not serve and for custom resource groups,
      // whose handler falls through to the mux's NotFound (pinned in tests/cluster/parity_test.ts).
      const served = this.registry.hasGroupVersion(info.group, info.version);
      const crdGroup = this.registry.all().some((d) => d.group === info.group && d.fromCrd);
      if (info.group !== "" && (!served || crdGroup)) return notFoundText();
      throw pathNotFound();
    }
    if (!def.namespaced && info.namespace && !(def.plural === "namespaces" && def.group === "")) {
      throw pathNotFound();
    }
    if (info.subresource && !def.subresources[info.subresource]) throw pathNotFound();
    const query = url.searchParams;
    const dryRunValues = query.getAll("dryRun");
    for (const v of dryRunValues) {
      if (v !== "All") {
        throw invalid({ group: "meta.k8s.io", kind: optionsKind(info.verb) }, "", [
          { type: "NotSupported", field: "dryRun", value: dryRunValues, detail: 'supported values: "All"' },
        ]);
      }
    }
    const manager = query.get("fieldManager") ?? managerFromAgent(request.headers.get("user-agent"));
    const ctx: WriteContext = { user, query, dryRun: dryRunValues.length > 0, manager, warnings: [] };
    const representation = representationOf(request.headers.get("accept"));
    const include = (query.get("includeObject") ?? "Metadata") as IncludeObject;
    switch (info.verb) {
      case "get":
        return this.#get(def, info, representation, include);
      case "list":
        if (def.createOnly || !def.verbs.includes("list")) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        return this.#list(def, info, query, representation, include);
      case "watch":
        if (def.createOnly || !def.verbs.includes("watch")) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        return this.#watch(def, info, query, representation, include);
      case "create": {
        if (def.namespaced && !info.namespace && !def.createOnly) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        const body = await readObject(
          request,
          def,
          info.subresource ? def.subresources[info.subresource]?.kind ?? def.kind : def.kind,
        );
        if (info.subresource || def.createOnly) return await this.#virtualCreate(def, info, body, ctx);
        if (info.name) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        return await this.#create(def, info.namespace, body, ctx);
      }
      case "update": {
        if (!info.name) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        const body = await readObject(request, def, def.kind);
        return await this.#update(def, info, body, ctx);
      }
      case "patch":
        if (!info.name) {
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        }
        return await this.#patch(def, info, request, ctx);
      case "delete":
        return await this.#delete(def, info, request, ctx);
      case "deletecollection":
        return await this.#deleteCollection(def, info, ctx);
    }
    throw methodNotAllowed("the server does not allow this method on the requested resource");
  }

  #entry(def: ResourceDef, namespace: string, name: string): Entry {
    const entry = this.store.get(def.storageKey, def.namespaced ? namespace : "", name);
    if (!entry) throw notFound(qualifiedOf(def), name);
    return entry;
  }

  #jsonFor(def: ResourceDef, entry: Entry): string {
    if (def.storageVersion === apiVersionOf(def)) return entry.json;
    return JSON.stringify({ ...entry.object, apiVersion: apiVersionOf(def) });
  }

  #get(def: ResourceDef, info: RequestInfo, representation: string, include: IncludeObject): Response {
    if (def.createOnly) {
      throw methodNotAllowed("the server does not allow this method on the requested resource");
    }
    if (info.subresource && info.subresource !== "status") {
      throw methodNotAllowed("the server does not allow this method on the requested resource");
    }
    const entry = this.#entry(def, info.namespace, info.name);
    if (representation === "table") {
      const object = this.#versioned(def, entry.object);
      return json(
        200,
        tableOf(def, [object], { resourceVersion: String(entry.rv) }, {
          include,
          headers: true,
          now: Date.now(),
        }),
      );
    }
    if (representation === "partial") return json(200, partialOf(entry.object));
    return jsonText(200, this.#jsonFor(def, entry));
  }

  #versioned(def: ResourceDef, object: KubeObject): KubeObject {
    return def.storageVersion === apiVersionOf(def) ? object : { ...object, apiVersion: apiVersionOf(def) };
  }

  #selection(def: ResourceDef, namespace: string, query: URLSearchParams): Selection {
    const labels = parseLabelSelector(query.get("labelSelector") ?? "");
    const fields = parseFieldSelector(query.get("fieldSelector") ?? "");
    for (const f of fields) {
      if (!def.fieldSelectors[f.field]) {
        const known = Object.keys(def.fieldSelectors);
        throw badRequest(
          def.customFieldLabels
            ? `field label not supported: ${f.field}`
            : def.custom
            ? `field label not supported: ${f.field}`
            : `"${f.field}" is not a known field selector: only ${
              known.map((k) => JSON.stringify(k)).join(", ")
            }`,
        );
      }
    }
    return { namespace: def.namespaced && namespace ? namespace : undefined, labels, fields };
  }

  async #list(
    def: ResourceDef,
    info: RequestInfo,
    query: URLSearchParams,
    representation: string,
    include: IncludeObject,
  ): Promise<Response> {
    const selection = this.#selection(def, info.namespace, query);
    const limit = Number(query.get("limit") ?? 0);
    const rvParam = query.get("resourceVersion") ?? "";
    const rvMatch = query.get("resourceVersionMatch") ?? "";
    const token = query.get("continue") ?? "";
    if (token && rvParam !== "") {
      throw invalid({ group: "meta.k8s.io", kind: "ListOptions" }, "", [
        {
          type: "Forbidden",
          field: "resourceVersion",
          detail: "specifying resource version is not allowed when using continue",
        },
      ]);
    }
    if (rvMatch && rvParam === "") {
      throw invalid({ group: "meta.k8s.io", kind: "ListOptions" }, "", [
        {
          type: "Forbidden",
          field: "resourceVersionMatch",
          detail: "resourceVersionMatch is forbidden unless resourceVersion is provided",
        },
      ]);
    }
    if (rvMatch && rvMatch !== "NotOlderThan" && rvMatch !== "Exact") {
      throw invalid({ group: "meta.k8s.io", kind: "ListOptions" }, "", [
        {
          type: "NotSupported",
          field: "resourceVersionMatch",
          value: rvMatch,
          detail: 'supported values: "Exact", "NotOlderThan"',
        },
      ]);
    }
    if (rvParam !== "" && rvParam !== "0") {
      if (!/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version "${rvParam}"`);
      const wanted = Number(rvParam);
      if (rvMatch === "Exact") {
        if (wanted !== this.store.resourceVersion) {
          throw expired(`The resourceVersion for the provided list is too old.`);
        }
      } else if (wanted > this.store.resourceVersion) {
        await this.#waitForRv(wanted);
      }
    }
    let listRv = this.store.resourceVersion;
    let after: { namespace: string; name: string } | undefined;
    if (token) {
      const decoded = decodeContinue(token);
      if (decoded.rv < this.store.oldestWatchable) {
        throw new KubeStatusError(410, "Expired", CONTINUE_EXPIRED, { details: undefined });
      }
      listRv = decoded.rv;
      after = decoded.after;
    }
    const items: Entry[] = [];
    let next: string | undefined;
    let remaining: number | undefined;
    const ns = def.namespaced && info.namespace ? info.namespace : undefined;
    const filtering = selection.labels.length > 0 || selection.fields.length > 0;
    let last: Entry | undefined;
    for (const entry of this.store.entries(def.storageKey, ns, after)) {
      if (limit > 0 && items.length >= limit) {
        next = encodeContinue(listRv, last as Entry);
        if (!filtering) remaining = this.#countAfter(def, ns, last as Entry);
        break;
      }
      last = entry;
      if (filtering && !selects(def, selection, entry.object)) continue;
      items.push(entry);
    }
    const meta: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (next) meta.continue = next;
    if (remaining !== undefined) meta.remainingItemCount = remaining;
    if (representation === "table") {
      const objects = items.map((e) => this.#versioned(def, e.object));
      return json(200, tableOf(def, objects, meta, { include, headers: true, now: Date.now() }));
    }
    if (representation === "partial") {
      return json(200, {
        kind: "PartialObjectMetadataList",
        apiVersion: "meta.k8s.io/v1",
        metadata: meta,
        items: items.map((e) => partialOf(e.object)),
      });
    }
    const head = `{"kind":"${def.listKind}","apiVersion":"${apiVersionOf(def)}","metadata":${
      JSON.stringify(meta)
    },"items":[`;
    const parts = items.map((e) => this.#jsonFor(def, e));
    return jsonText(200, head + parts.join(",") + "]}");
  }

  #countAfter(def: ResourceDef, ns: string | undefined, last: Entry): number {
    const after = { namespace: last.object.metadata.namespace ?? "", name: last.object.metadata.name ?? "" };
    return this.store.countAfter(def.storageKey, ns, after);
  }

  async #waitForRv(wanted: number): Promise<void> {
    const deadline = Date.now() + 3000;
    while (this.store.resourceVersion < wanted) {
      if (Date.now() > deadline || this.#closed) {
        throw new KubeStatusError(
          504,
          "Timeout",
          `Timeout: Too large resource version: ${wanted}, current: ${this.store.resourceVersion}`,
          {
            details: {
              causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
              retryAfterSeconds: 1,
            },
          },
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, 50);
        this.#timers.add(t);
      });
    }
  }

  #watch(
    def: ResourceDef,
    info: RequestInfo,
    query: URLSearchParams,
    representation: string,
    include: IncludeObject,
  ): Response {
    const selection = this.#selection(def, info.namespace, query);
    if (info.name) selection.fields.push({ field: "metadata.name", op: "=", value: info.name });
    const rvParam = query.get("resourceVersion") ?? "";
    const sendInitial = query.get("sendInitialEvents") === "true";
    const bookmarks = query.get("allowWatchBookmarks") === "true";
    if (sendInitial && query.get("resourceVersionMatch") !== "NotOlderThan") {
      throw invalid({ group: "meta.k8s.io", kind: "ListOptions" }, "", [
        {
          type: "Forbidden",
          field: "resourceVersionMatch",
          detail: "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        },
      ]);
    }
    if (rvParam !== "" && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version "${rvParam}"`);
    const timeoutParam = Number(query.get("timeoutSeconds") ?? "");
    const timeoutSeconds = Number.isFinite(timeoutParam) && timeoutParam > 0
      ? timeoutParam
      : 1800 + Math.floor(Math.random() * 1800);
    let history: ReturnType<Store["since"]>;
    const fromRv = rvParam === "" || rvParam === "0" ? undefined : Number(rvParam);
    if (fromRv !== undefined && !sendInitial) {
      history = this.store.since(def.storageKey, fromRv);
      if (!history) {
        const gone = expired(`too old resource version: ${fromRv} (${this.store.oldestWatchable + 1})`);
        if (this.options.watchExpiredAs === "http") throw gone;
        const stream = this.#openWatch(def, selection, representation, include, bookmarks, 1000);
        stream.error(gone.toStatus());
        return watchResponse(stream, representation);
      }
    }
    const stream = this.#openWatch(def, selection, representation, include, bookmarks, timeoutSeconds * 1000);
    const ns = selection.namespace;
    if (fromRv === undefined || sendInitial) {
      stream.sendInitial(this.store.entries(def.storageKey, ns));
      if (sendInitial) stream.bookmark({ "k8s.io/initial-events-end": "true" });
    } else if (history) {
      stream.replay(history);
    }
    stream.attach(this.store.subscribe(def.storageKey, stream));
    return watchResponse(stream, representation);
  }

  #openWatch(
    def: ResourceDef,
    selection: Selection,
    representation: string,
    include: IncludeObject,
    bookmarks: boolean,
    timeoutMs: number,
  ): WatchStream {
    const stream = new WatchStream({
      def,
      selection,
      representation: representation as "object" | "table" | "partial",
      include,
      bookmarks,
      timeoutMs,
      maxQueued: 100_000,
      currentRv: () => this.store.resourceVersion,
      onEnd: (s) => this.#watches.delete(s),
    });
    this.#watches.add(stream);
    return stream;
  }

  /** Number of open watches. */
  get watchCount(): number {
    return this.#watches.size;
  }

  /** Ends the watches of a resource (its CRD went away). */
  #endWatches(def: ResourceDef): void {
    for (const listener of this.store.listeners(def.storageKey)) {
      if (listener instanceof WatchStream) listener.close({ bookmark: false });
    }
  }

  // --- writes ---

  #decode(def: ResourceDef, body: KubeObject, kind: string): KubeObject {
    const expected = apiVersionOf(def);
    if (body.kind !== undefined && body.kind !== "" && body.kind !== kind) {
      const v = versionPart(String(body.apiVersion ?? expected));
      const internal = def.group ? def.group.split(".")[0] : "core";
      throw badRequest(
        `${body.kind} in version "${v}" cannot be handled as a ${kind}: converting (${v}.${body.kind}) to (${internal}.${kind}): unknown conversion`,
      );
    }
    if (body.apiVersion !== undefined && body.apiVersion !== "" && body.apiVersion !== expected) {
      const known = this.registry.versionsOf(def.group).includes(versionPart(String(body.apiVersion))) &&
        groupPart(String(body.apiVersion)) === def.group;
      if (!known) {
        throw cannotHandle(
          kind,
          versionPart(String(body.apiVersion)),
          `no kind "${kind}" is registered for version "${body.apiVersion}" in scheme "pkg/runtime/scheme.go:110"`,
        );
      }
    }
    const object = structuredClone(body);
    object.apiVersion = expected;
    object.kind = kind;
    const shape = metadataShapeProblem(object.metadata, kind);
    if (shape) throw cannotHandle(kind, def.version, shape);
    if (!isObject(object.metadata)) object.metadata = {};
    for (const [key, value] of Object.entries(object.metadata)) {
      if (value === null) delete object.metadata[key];
    }
    const problem = def.decode?.(object);
    if (problem) throw cannotHandle(kind, def.version, problem);
    return object;
  }

  /** Prunes/defaults/validates a custom resource; handles `fieldValidation`. */
  #custom(def: ResourceDef, object: KubeObject, ctx: WriteContext): FieldError[] {
    if (!def.custom) return [];
    const { errors, unknown } = def.custom.process(object);
    if (unknown.length > 0) {
      const mode = ctx.query.get("fieldValidation") ?? "Warn";
      const texts = unknown.map((u) => `unknown field ${JSON.stringify(u)}`);
      if (mode === "Strict") {
        throw cannotHandle(def.kind, def.version, `strict decoding error: ${texts.join(", ")}`);
      }
      if (mode === "Warn") ctx.warnings.push(...texts);
    }
    return errors;
  }

  #checkNamespace(def: ResourceDef, namespace: string, name: string): void {
    if (!def.namespaced) return;
    const ns = this.store.get(NAMESPACES, "", namespace);
    if (!ns) throw notFound({ resource: "namespaces", group: "" }, namespace);
    if (ns.object.metadata.deletionTimestamp) {
      throw new KubeStatusError(
        403,
        "Forbidden",
        `${qualifiedName(def)}${
          name ? ` "${name}"` : ""
        } is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        {
          details: {
            ...(name ? { name } : {}),
            ...(def.group ? { group: def.group } : {}),
            kind: def.plural,
            causes: [{
              reason: "NamespaceTerminating",
              message: `namespace ${namespace} is being terminated`,
              field: "metadata.namespace",
            }],
          },
        },
      );
    }
  }

  #validate(def: ResourceDef, object: KubeObject, old: KubeObject | undefined, extra: FieldError[]): void {
    const errors: FieldError[] = [
      ...validateMetadata(object.metadata, { namespaced: def.namespaced, nameRule: def.nameRule }),
      ...(old ? validateMetadataUpdate(object.metadata, old.metadata) : []),
      ...extra,
      ...(def.validate?.(object, old) ?? []),
    ];
    if (def.storageKey === CRDS) errors.push(...validateCrd(object));
    if (errors.length > 0) {
      throw invalid({ group: def.group, kind: def.kind }, object.metadata.name ?? "", errors);
    }
  }

  async #create(
    def: ResourceDef,
    namespace: string,
    body: KubeObject,
    ctx: WriteContext,
    applied?: KubeObject,
  ): Promise<Response> {
    let object = this.#decode(def, body, def.kind);
    if (def.namespaced) {
      if (object.metadata.namespace && object.metadata.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      object.metadata.namespace = namespace;
    } else {
      delete object.metadata.namespace;
    }
    def.normalize?.(object, {});
    this.#custom(def, object, ctx);
    this.#checkNamespace(def, namespace, object.metadata.name ?? "");
    const admitted = await this.admission.mutate({
      operation: "CREATE",
      def,
      subresource: "",
      kind: def.kind,
      namespace: def.namespaced ? namespace : "",
      name: object.metadata.name ?? "",
      object,
      oldObject: undefined,
      user: ctx.user,
      dryRun: ctx.dryRun,
      options: ctx.manager ? { fieldManager: ctx.manager } : {},
    });
    object = admitted.object as KubeObject;
    ctx.warnings.push(...admitted.warnings);
    object.apiVersion = apiVersionOf(def);
    object.kind = def.kind;
    def.normalize?.(object, {});
    const errors = this.#custom(def, object, { ...ctx, query: new URLSearchParams() });
    if (def.statusSubresource && def.plural !== "namespaces") delete object.status;
    if (!object.metadata.name && object.metadata.generateName) {
      object.metadata.name = object.metadata.generateName + randomSuffix();
    }
    const meta = object.metadata;
    meta.uid = crypto.randomUUID();
    meta.creationTimestamp = nowSeconds();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.resourceVersion;
    delete meta.selfLink;
    if (def.generation) meta.generation = 1;
    else delete meta.generation;
    if (def.storageKey === CRDS) {
      crdDefaultsAndStatus(object, nowSeconds());
      meta.finalizers = [...new Set([...(meta.finalizers ?? []), CRD_FINALIZER])];
    }
    this.#validate(def, object, undefined, errors);
    if (this.store.get(def.storageKey, meta.namespace ?? "", meta.name ?? "")) {
      throw alreadyExists(qualifiedOf(def), meta.name ?? "");
    }
    if (applied) {
      object.metadata.managedFields = applied.metadata.managedFields;
    } else {
      recordUpdate(undefined, object, this.#ownership(def, ctx.manager, "main"));
    }
    const headers = warningHeader(ctx.warnings);
    if (ctx.dryRun) return json(201, canonical(object), headers);
    const entry = this.store.put(def.storageKey, object, "ADDED");
    if (def.storageKey === CRDS) this.#registerCrd(entry.object);
    return jsonText(201, this.#jsonFor(def, entry), headers);
  }

  #ownership(def: ResourceDef, manager: string, scope: "main" | "status") {
    return {
      manager,
      apiVersion: apiVersionOf(def),
      scope,
      schema: def.applySchema ?? def.strategic,
      hasStatus: def.statusSubresource,
    };
  }

  async #update(def: ResourceDef, info: RequestInfo, body: KubeObject, ctx: WriteContext): Promise<Response> {
    const decoded = this.#decode(def, body, def.kind);
    if (decoded.metadata.name !== undefined && decoded.metadata.name !== info.name) {
      throw badRequest(
        `the name of the object (${
          decoded.metadata.name ?? ""
        }) does not match the name on the URL (${info.name})`,
      );
    }
    if (def.namespaced && decoded.metadata.namespace && decoded.metadata.namespace !== info.namespace) {
      throw badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    const precondition = decoded.metadata.resourceVersion;
    return await this.#commitUpdate(def, info, ctx, () => decoded, precondition, {
      // Custom resources and CRDs allow no unconditional update.
      requireRv: !precondition && (def.custom !== undefined || def.storageKey === CRDS),
    });
  }

  /**
   * The shared tail of update and patch: `produce` makes the new object from the current one. A
   * concurrent write during admission makes an unconditional update start over, as GuaranteedUpdate does.
   */
  async #commitUpdate(
    def: ResourceDef,
    info: RequestInfo,
    ctx: WriteContext,
    produce: (current: KubeObject) => KubeObject,
    precondition: string | undefined,
    options: { applied?: (current: KubeObject) => KubeObject; requireRv?: boolean } = {},
  ): Promise<Response> {
    for (let attempt = 0;; attempt++) {
      const entry = this.#entry(def, info.namespace, info.name);
      if (options.requireRv) {
        throw invalid({ group: def.group, kind: def.kind }, info.name, [
          {
            type: "Invalid",
            field: "metadata.resourceVersion",
            value: "",
            detail: "must be specified for an update",
          },
        ]);
      }
      const current = JSON.parse(entry.json) as KubeObject;
      if (precondition && precondition !== String(entry.rv)) throw conflict(qualifiedOf(def), info.name);
      let next = options.applied ? options.applied(current) : produce(current);
      next = this.#decode(def, next, def.kind);
      if (next.metadata.name !== info.name) {
        throw badRequest(
          `the name of the object (${
            next.metadata.name ?? ""
          }) does not match the name on the URL (${info.name})`,
        );
      }
      const scope = info.subresource === "status" ? "status" : "main";
      next = this.#prepareUpdate(def, info.subresource, next, current);
      def.normalize?.(next, { old: current });
      this.#custom(def, next, ctx);
      const admitted = await this.admission.mutate({
        operation: "UPDATE",
        def,
        subresource: info.subresource,
        kind: def.kind,
        namespace: def.namespaced ? info.namespace : "",
        name: info.name,
        object: next,
        oldObject: current,
        user: ctx.user,
        dryRun: ctx.dryRun,
        options: ctx.manager ? { fieldManager: ctx.manager } : {},
      });
      next = admitted.object as KubeObject;
      ctx.warnings.push(...admitted.warnings);
      next.apiVersion = apiVersionOf(def);
      next.kind = def.kind;
      next = this.#prepareUpdate(def, info.subresource, next, current);
      def.normalize?.(next, { old: current });
      const errors = this.#custom(def, next, { ...ctx, query: new URLSearchParams() });
      if (def.generation) {
        const strip = (o: KubeObject) => JSON.stringify({ ...o, metadata: undefined, status: undefined });
        next.metadata.generation = (current.metadata.generation ?? 1) +
          (strip(next) !== strip(current) ? 1 : 0);
      }
      if (def.storageKey === CRDS) {
        crdDefaultsAndStatus(next, nowSeconds());
        if (!current.metadata.deletionTimestamp) {
          next.metadata.finalizers = [...new Set([...(next.metadata.finalizers ?? []), CRD_FINALIZER])];
        }
      }
      this.#validate(def, next, current, errors);
      if (!options.applied) recordUpdate(current, next, this.#ownership(def, ctx.manager, scope));
      const latest = this.store.get(def.storageKey, def.namespaced ? info.namespace : "", info.name);
      if (!latest) throw notFound(qualifiedOf(def), info.name);
      if (latest.rv !== entry.rv) {
        if (precondition || attempt > 5) throw conflict(qualifiedOf(def), info.name);
        continue;
      }
      const headers = warningHeader(ctx.warnings);
      const finalized = next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0 &&
        !(def.plural === "namespaces" && def.group === "" &&
          ((next.spec as Record<string, unknown>)?.finalizers as unknown[] ?? []).length > 0);
      if (same(next, current)) return jsonText(200, this.#jsonFor(def, entry), headers);
      if (ctx.dryRun) return json(200, canonical(next), headers);
      if (finalized) {
        const gone = this.#remove(def, next);
        return jsonText(200, this.#jsonFor(def, gone), headers);
      }
      const stored = this.store.put(def.storageKey, next, "MODIFIED");
      this.#afterWrite(def, stored.object);
      return jsonText(200, this.#jsonFor(def, stored), headers);
    }
  }

  /** Status-subresource semantics and the metadata an update may not change. */
  #prepareUpdate(def: ResourceDef, subresource: string, next: KubeObject, current: KubeObject): KubeObject {
    let out = next;
    if (subresource === "status") {
      out = { ...structuredClone(current), status: next.status };
      if (next.status === undefined) delete out.status;
      out.metadata = {
        ...out.metadata,
        managedFields: next.metadata.managedFields ?? current.metadata.managedFields,
      };
    } else if (subresource === "finalize") {
      const spec = isObject(current.spec) ? { ...current.spec } : {};
      spec.finalizers = isObject(next.spec) ? next.spec.finalizers : undefined;
      // Go's omitempty: an empty list is not written.
      if (!Array.isArray(spec.finalizers) || spec.finalizers.length === 0) delete spec.finalizers;
      out = { ...structuredClone(current), spec };
    } else if (def.statusSubresource) {
      out = { ...next };
      if (current.status !== undefined) out.status = structuredClone(current.status);
      else delete out.status;
      if (def.storageKey === NAMESPACES) {
        // A namespace's spec.finalizers change only through /finalize.
        const spec = isObject(out.spec) ? { ...out.spec } : {};
        const old = isObject(current.spec) ? current.spec.finalizers : undefined;
        if (old === undefined) delete spec.finalizers;
        else spec.finalizers = structuredClone(old);
        out.spec = spec;
      }
    }
    const meta = out.metadata;
    const old = current.metadata;
    meta.uid ||= old.uid;
    meta.creationTimestamp = old.creationTimestamp;
    if (old.deletionTimestamp) {
      meta.deletionTimestamp = old.deletionTimestamp;
      meta.deletionGracePeriodSeconds = old.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
    }
    if (def.generation) meta.generation = old.generation;
    else delete meta.generation;
    if (def.namespaced) meta.namespace = old.namespace;
    return out;
  }

  async #patch(def: ResourceDef, info: RequestInfo, request: Request, ctx: WriteContext): Promise<Response> {
    const contentType = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    const accepted = ["application/json-patch+json", "application/merge-patch+json"];
    if (def.strategic) accepted.push("application/strategic-merge-patch+json");
    accepted.push("application/apply-patch+yaml");
    if (!contentType || !accepted.includes(contentType)) throw unsupportedMediaType(accepted);
    const text = await readText(request);
    const force = ctx.query.get("force");
    if (contentType !== "application/apply-patch+yaml" && force !== null) {
      throw invalid({ group: "meta.k8s.io", kind: "PatchOptions" }, "", [
        { type: "Forbidden", field: "force", detail: "may not be specified for non-apply patch" },
      ]);
    }
    if (contentType === "application/apply-patch+yaml") {
      return await this.#apply(def, info, text, ctx, force === "true");
    }
    let patch: unknown;
    try {
      patch = JSON.parse(text);
    } catch (error) {
      throw badRequest(`error decoding patch: ${(error as Error).message}`);
    }
    if (contentType !== "application/json-patch+json" && !isObject(patch)) {
      throw badRequest(
        `error decoding patch: json: cannot unmarshal ${
          Array.isArray(patch) ? "array" : typeof patch
        } into Go value of type map[string]interface {}`,
      );
    }
    const produce = (current: KubeObject): KubeObject => {
      let result: unknown;
      if (contentType === "application/json-patch+json") result = applyJsonPatch(current, patch);
      else if (contentType === "application/merge-patch+json") result = mergePatch(current, patch);
      else result = strategicMerge(current, patch, def.strategic);
      if (!isObject(result)) throw badRequest("the patch produced something that is not an object");
      const out = result as KubeObject;
      if (!isObject(out.metadata)) out.metadata = {};
      return out;
    };
    // A resourceVersion in the patch is a precondition.
    const entry = this.#entry(def, info.namespace, info.name);
    const probe = produce(JSON.parse(entry.json) as KubeObject);
    const patchedRv = probe.metadata.resourceVersion;
    const precondition = patchedRv !== undefined && patchedRv !== String(entry.rv) ? patchedRv : undefined;
    if (precondition) throw conflict(qualifiedOf(def), info.name);
    return await this.#commitUpdate(def, info, ctx, produce, undefined);
  }

  async #apply(
    def: ResourceDef,
    info: RequestInfo,
    text: string,
    ctx: WriteContext,
    force: boolean,
  ): Promise<Response> {
    const manager = ctx.query.get("fieldManager");
    if (!manager) {
      throw invalid({ group: "meta.k8s.io", kind: "PatchOptions" }, "", [
        { type: "Required", field: "fieldManager", detail: "is required for apply patch" },
      ]);
    }
    let applied: unknown;
    try {
      applied = parseYaml(text);
    } catch (error) {
      throw badRequest(`error decoding YAML: ${(error as Error).message}`);
    }
    if (!isObject(applied)) {
      throw badRequest("error decoding YAML: the applied configuration must be an object");
    }
    const config = applied as KubeObject;
    if (!isObject(config.metadata)) config.metadata = {};
    if (config.apiVersion !== apiVersionOf(def) || config.kind !== def.kind) {
      throw badRequest(
        `error decoding patch: the apiVersion and kind of the applied configuration (${config.apiVersion}, ${config.kind}) must be ${
          apiVersionOf(def)
        }, ${def.kind}`,
      );
    }
    if (config.metadata.name !== undefined && config.metadata.name !== info.name) {
      throw badRequest(
        `the name of the object (${config.metadata.name}) does not match the name on the URL (${info.name})`,
      );
    }
    config.metadata.name = info.name;
    const scope = info.subresource === "status" ? "status" : "main";
    const ownership = { ...this.#ownership(def, manager, scope), force };
    const existing = this.store.get(def.storageKey, def.namespaced ? info.namespace : "", info.name);
    if (!existing) {
      if (info.subresource) throw notFound(qualifiedOf(def), info.name);
      const created = serverSideApply(undefined, config, ownership);
      if (def.namespaced) created.metadata.namespace = info.namespace;
      return await this.#create(def, info.namespace, created, { ...ctx, manager }, created);
    }
    const precondition = config.metadata.resourceVersion;
    if (precondition && precondition !== String(existing.rv)) throw conflict(qualifiedOf(def), info.name);
    return await this.#commitUpdate(def, info, { ...ctx, manager }, (c) => c, undefined, {
      applied: (current) => serverSideApply(current, config, ownership),
    });
  }

  async #delete(def: ResourceDef, info: RequestInfo, request: Request, ctx: WriteContext): Promise<Response> {
    if (info.subresource) {
      throw methodNotAllowed("the server does not allow this method on the requested resource");
    }
    if (def.createOnly) {
      throw methodNotAllowed("the server does not allow this method on the requested resource");
    }
    const text = await readText(request);
    let options: Record<string, unknown> = {};
    if (text.trim() !== "") {
      try {
        const parsed = JSON.parse(text);
        if (isObject(parsed)) options = parsed;
      } catch (error) {
        throw badRequest(
          `the object provided is unrecognized (must be of type DeleteOptions): couldn't get version/kind; json parse error: ${
            (error as Error).message
          }`,
        );
      }
    }
    const entry = this.#entry(def, info.namespace, info.name);
    const current = JSON.parse(entry.json) as KubeObject;
    const pre = isObject(options.preconditions) ? options.preconditions : {};
    if (pre.uid !== undefined && pre.uid !== current.metadata.uid) {
      throw conflict(
        { resource: def.kind, group: "" },
        info.name,
        `the UID in the precondition (${pre.uid}) does not match the UID in record (${current.metadata.uid}). The object might have been deleted and then recreated`,
      );
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== String(entry.rv)) {
      throw conflict(
        { resource: def.kind, group: "" },
        info.name,
        `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${entry.rv}). The object might have been modified`,
      );
    }
    const isNamespace = def.plural === "namespaces" && def.group === "";
    if (isNamespace && PROTECTED_NAMESPACES.has(info.name)) {
      throw forbidden(
        { resource: { resource: "namespaces", group: "" }, name: info.name },
        "this namespace may not be deleted",
      );
    }
    await this.admission.mutate({
      operation: "DELETE",
      def,
      subresource: "",
      kind: def.kind,
      namespace: def.namespaced ? info.namespace : "",
      name: info.name,
      object: undefined,
      oldObject: current,
      user: ctx.user,
      dryRun: ctx.dryRun,
      options: { ...options, kind: undefined, apiVersion: undefined },
    });
    const headers = warningHeader(ctx.warnings);
    if (ctx.dryRun) {
      return def.returnDeletedObject || isNamespace
        ? jsonText(200, entry.json, headers)
        : json(200, successStatus(deletedDetails(def, current)), headers);
    }
    if (isNamespace) {
      if (current.metadata.deletionTimestamp) {
        throw conflict(
          qualifiedOf(def),
          info.name,
          "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
        );
      }
      current.metadata.deletionTimestamp = nowSeconds();
      current.metadata.deletionGracePeriodSeconds = 0;
      current.status = { ...(isObject(current.status) ? current.status : {}), phase: "Terminating" };
      const stored = this.store.put(def.storageKey, current, "MODIFIED");
      this.#later(() => this.#terminateNamespace(info.name));
      return jsonText(200, stored.json, headers);
    }
    const deleted = this.#deleteObject(def, current);
    if (deleted === "pending") {
      const e = this.#entry(def, info.namespace, info.name);
      return jsonText(200, this.#jsonFor(def, e), headers);
    }
    return def.returnDeletedObject
      ? jsonText(200, this.#jsonFor(def, deleted), headers)
      : json(200, successStatus(deletedDetails(def, current)), headers);
  }

  /** Deletes, or marks for deletion when finalizers remain. */
  #deleteObject(def: ResourceDef, current: KubeObject): Entry | "pending" {
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (!current.metadata.deletionTimestamp) {
        current.metadata.deletionTimestamp = nowSeconds();
        current.metadata.deletionGracePeriodSeconds = 0;
        if (def.generation) current.metadata.generation = (current.metadata.generation ?? 1) + 1;
        const stored = this.store.put(def.storageKey, current, "MODIFIED");
        this.#afterWrite(def, stored.object);
      }
      return "pending";
    }
    return this.#remove(def, current);
  }

  #remove(def: ResourceDef, object: KubeObject): Entry {
    const gone = this.store.remove(
      def.storageKey,
      object.metadata.namespace ?? "",
      object.metadata.name ?? "",
    ) as Entry;
    if (def.storageKey === CRDS) this.#unregisterCrd(object);
    if (object.metadata.namespace) {
      this.#later(() => this.#terminateNamespace(object.metadata.namespace as string));
    }
    return gone;
  }

  async #deleteCollection(def: ResourceDef, info: RequestInfo, ctx: WriteContext): Promise<Response> {
    const selection = this.#selection(def, info.namespace, ctx.query);
    const ns = def.namespaced && info.namespace ? info.namespace : undefined;
    const victims = [...this.store.entries(def.storageKey, ns)].filter((e) =>
      selects(def, selection, e.object)
    );
    const deleted: KubeObject[] = [];
    for (const entry of victims) {
      const current = JSON.parse(entry.json) as KubeObject;
      await this.admission.mutate({
        operation: "DELETE",
        def,
        subresource: "",
        kind: def.kind,
        namespace: current.metadata.namespace ?? "",
        name: current.metadata.name ?? "",
        object: undefined,
        oldObject: current,
        user: ctx.user,
        dryRun: ctx.dryRun,
        options: {},
      });
      if (!ctx.dryRun) this.#deleteObject(def, current);
      deleted.push(current);
    }
    return json(200, {
      kind: def.listKind,
      apiVersion: apiVersionOf(def),
      metadata: { resourceVersion: String(this.store.resourceVersion) },
      items: deleted,
    });
  }

  /** After a write: namespace and CRD lifecycles react. */
  #afterWrite(def: ResourceDef, object: KubeObject): void {
    if (def.storageKey === NAMESPACES && object.metadata.deletionTimestamp) {
      this.#later(() => this.#terminateNamespace(object.metadata.name as string));
    }
    if (def.storageKey === CRDS) {
      if (object.metadata.deletionTimestamp) {
        this.#later(() => this.#cleanupCrd(object.metadata.name as string));
      } else this.#registerCrd(object);
    }
  }

  // --- virtual creates: reviews and hooks ---

  async #virtualCreate(
    def: ResourceDef,
    info: RequestInfo,
    body: KubeObject,
    ctx: WriteContext,
  ): Promise<Response> {
    const kind = info.subresource ? def.subresources[info.subresource]?.kind ?? def.kind : def.kind;
    if (def.group === "authorization.k8s.io") {
      return json(201, this.#review(def, body, ctx.user, info.namespace));
    }
    const object = structuredClone(body);
    object.apiVersion = apiVersionOf(def);
    object.kind = kind;
    if (!isObject(object.metadata)) object.metadata = {};
    if (def.namespaced) {
      if (object.metadata.namespace && object.metadata.namespace !== info.namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      object.metadata.namespace = info.namespace;
      this.#checkNamespace(def, info.namespace, info.name || (object.metadata.name ?? ""));
    }
    if (info.subresource) this.#entry(def, info.namespace, info.name);
    const handler = this.hooks.find(def.group, def.plural, info.subresource);
    if (!handler) {
      throw new KubeStatusError(
        503,
        "ServiceUnavailable",
        `${def.plural}${
          info.subresource ? `/${info.subresource}` : ""
        } in ${def.group} is not available: the test world has no handler registered for it`,
      );
    }
    const admitted = await this.admission.mutate({
      operation: "CREATE",
      def,
      subresource: info.subresource,
      kind,
      namespace: def.namespaced ? info.namespace : "",
      name: info.name || (object.metadata.name ?? ""),
      object,
      oldObject: undefined,
      user: ctx.user,
      dryRun: ctx.dryRun,
      options: {},
    });
    ctx.warnings.push(...admitted.warnings);
    let answer: KubeObject;
    try {
      answer = await handler({
        group: def.group,
        version: def.version,
        resource: def.plural,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name || (object.metadata.name ?? ""),
        body: admitted.object as KubeObject,
        user: ctx.user,
        dryRun: ctx.dryRun,
        query: ctx.query,
      });
    } catch (error) {
      if (error instanceof KubeStatusError) throw error;
      throw internalError((error as Error)?.message ?? String(error));
    }
    const out = { kind: answer.kind ?? kind, apiVersion: answer.apiVersion ?? apiVersionOf(def), ...answer };
    return json(201, out, warningHeader(ctx.warnings));
  }

  #review(def: ResourceDef, body: KubeObject, user: UserInfo, namespace: string): KubeObject {
    const spec = isObject(body.spec) ? body.spec : {};
    const out: KubeObject = {
      kind: def.kind,
      apiVersion: apiVersionOf(def),
      metadata: { creationTimestamp: null as unknown as string },
      spec,
    };
    if (def.plural === "selfsubjectrulesreviews") {
      const rules = this.authorizer.rulesFor(user, String(spec.namespace ?? ""));
      out.status = { ...rules, incomplete: false };
      return out;
    }
    let subject = user;
    if (def.plural === "subjectaccessreviews" || def.plural === "localsubjectaccessreviews") {
      subject = {
        username: String(spec.user ?? ""),
        groups: Array.isArray(spec.groups) ? spec.groups as string[] : [],
        uid: spec.uid as string | undefined,
      };
    } else {
      out.spec = { ...spec };
    }
    const ra = isObject(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
    const nra = isObject(spec.nonResourceAttributes) ? spec.nonResourceAttributes : undefined;
    if (!ra && !nra) {
      throw invalid({ group: def.group, kind: def.kind }, "", [
        {
          type: "Invalid",
          field: "spec.resourceAttributes",
          value: spec,
          detail: "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        },
      ]);
    }
    const attributes: Attributes = ra
      ? {
        user: subject,
        verb: String(ra.verb ?? ""),
        resourceRequest: true,
        apiGroup: String(ra.group ?? ""),
        resource: String(ra.resource ?? ""),
        subresource: String(ra.subresource ?? ""),
        namespace: def.plural === "localsubjectaccessreviews" ? namespace : String(ra.namespace ?? ""),
        name: String(ra.name ?? ""),
        path: "",
      }
      : {
        user: subject,
        verb: String(nra?.verb ?? ""),
        resourceRequest: false,
        apiGroup: "",
        resource: "",
        subresource: "",
        namespace: "",
        name: "",
        path: String(nra?.path ?? ""),
      };
    const decision = this.authorizer.authorize(attributes);
    out.status = decision.reason
      ? { allowed: decision.allowed, reason: decision.reason }
      : { allowed: decision.allowed };
    return out;
  }

  // --- namespace lifecycle ---

  #terminateNamespace(name: string): void {
    const nsEntry = this.store.get(NAMESPACES, "", name);
    if (!nsEntry || !nsEntry.object.metadata.deletionTimestamp) return;
    let remaining = 0;
    const finalizersLeft = new Map<string, number>();
    for (const key of this.store.resourcesIn(name)) {
      const def = this.registry.all().find((d) => d.storageKey === key);
      for (const entry of [...this.store.entries(key, name)]) {
        const object = JSON.parse(entry.json) as KubeObject;
        if (!def) {
          this.store.remove(key, name, object.metadata.name ?? "");
          continue;
        }
        if (!object.metadata.deletionTimestamp) this.#deleteObject(def, object);
        if (this.store.get(key, name, object.metadata.name ?? "")) {
          remaining++;
          for (const f of object.metadata.finalizers ?? []) {
            finalizersLeft.set(f, (finalizersLeft.get(f) ?? 0) + 1);
          }
        }
      }
    }
    const ns = JSON.parse(this.store.get(NAMESPACES, "", name)?.json ?? "null") as KubeObject | null;
    if (!ns) return;
    const spec = isObject(ns.spec) ? ns.spec : {};
    const status = isObject(ns.status) ? ns.status : {};
    const now = nowSeconds();
    const conditions = [
      {
        type: "NamespaceDeletionDiscoveryFailure",
        status: "False",
        lastTransitionTime: now,
        reason: "ResourcesDiscovered",
        message: "All resources successfully discovered",
      },
      {
        type: "NamespaceDeletionGroupVersionParsingFailure",
        status: "False",
        lastTransitionTime: now,
        reason: "ParsedGroupVersions",
        message: "All legacy kube types successfully parsed",
      },
      {
        type: "NamespaceDeletionContentFailure",
        status: "False",
        lastTransitionTime: now,
        reason: "ContentDeleted",
        message: "All content successfully deleted, may be waiting on finalization",
      },
      remaining > 0
        ? {
          type: "NamespaceContentRemaining",
          status: "True",
          lastTransitionTime: now,
          reason: "SomeResourcesRemain",
          message: `Some resources are remaining: ${remaining} remaining`,
        }
        : {
          type: "NamespaceContentRemaining",
          status: "False",
          lastTransitionTime: now,
          reason: "ContentRemoved",
          message: "All content successfully removed",
        },
      finalizersLeft.size > 0
        ? {
          type: "NamespaceFinalizersRemaining",
          status: "True",
          lastTransitionTime: now,
          reason: "SomeFinalizersRemain",
          message: `Some content in the namespace has finalizers remaining: ${
            [...finalizersLeft].map(([f, n]) => `${f} in ${n} resource instances`).join(", ")
          }`,
        }
        : {
          type: "NamespaceFinalizersRemaining",
          status: "False",
          lastTransitionTime: now,
          reason: "ContentHasNoFinalizers",
          message: "All content-preserving finalizers finished",
        },
    ];
    const oldConditions = JSON.stringify(
      (status.conditions as Array<Record<string, unknown>> | undefined)?.map((c) => ({
        ...c,
        lastTransitionTime: "",
      })),
    );
    const changedConditions =
      oldConditions !== JSON.stringify(conditions.map((c) => ({ ...c, lastTransitionTime: "" })));
    if (changedConditions) status.conditions = conditions;
    ns.status = status;
    const specFinalizers = Array.isArray(spec.finalizers) ? spec.finalizers as string[] : [];
    if (remaining === 0 && specFinalizers.includes("kubernetes")) {
      const rest = specFinalizers.filter((f) => f !== "kubernetes");
      if (rest.length > 0) spec.finalizers = rest;
      else delete spec.finalizers;
      ns.spec = spec;
      if (rest.length === 0 && (ns.metadata.finalizers ?? []).length === 0) {
        this.store.remove(NAMESPACES, "", name);
        return;
      }
      this.store.put(NAMESPACES, ns, "MODIFIED");
      return;
    }
    if (remaining === 0 && specFinalizers.length === 0 && (ns.metadata.finalizers ?? []).length === 0) {
      this.store.remove(NAMESPACES, "", name);
      return;
    }
    if (changedConditions) this.store.put(NAMESPACES, ns, "MODIFIED");
  }

  // --- CRDs ---

  #registerCrd(crd: KubeObject): void {
    if (crd.metadata.deletionTimestamp) return;
    const spec = isObject(crd.spec) ? crd.spec : undefined;
    if (!spec) return;
    const names = spec.names as Record<string, unknown> | undefined;
    const group = String(spec.group);
    const plural = String(names?.plural);
    const previous = this.registry.anyVersion(group, plural);
    this.registry.removeResource(group, plural);
    try {
      for (const def of crdResources(crd)) this.registry.add(def);
    } catch {
      if (previous) this.registry.add(previous);
    }
  }

  #unregisterCrd(crd: KubeObject): void {
    const spec = crd.spec as Record<string, unknown>;
    const names = spec.names as Record<string, unknown>;
    const def = this.registry.anyVersion(String(spec.group), String(names.plural));
    if (def) this.#endWatches(def);
    this.registry.removeResource(String(spec.group), String(names.plural));
    this.store.drop(`${spec.group}/${names.plural}`);
  }

  #cleanupCrd(name: string): void {
    const entry = this.store.get(CRDS, "", name);
    if (!entry?.object.metadata.deletionTimestamp) return;
    const crd = JSON.parse(entry.json) as KubeObject;
    const spec = crd.spec as Record<string, unknown>;
    const names = spec.names as Record<string, unknown>;
    const key = `${spec.group}/${names.plural}`;
    const def = this.registry.anyVersion(String(spec.group), String(names.plural));
    let remaining = 0;
    if (def) {
      for (const e of [...this.store.entries(key)]) {
        const object = JSON.parse(e.json) as KubeObject;
        if (!object.metadata.deletionTimestamp) this.#deleteObject(def, object);
        if (this.store.get(key, object.metadata.namespace ?? "", object.metadata.name ?? "")) remaining++;
      }
    }
    if (remaining > 0) {
      this.#later(() => this.#cleanupCrd(name), 50);
      return;
    }
    crd.metadata.finalizers = (crd.metadata.finalizers ?? []).filter((f) => f !== CRD_FINALIZER);
    if (crd.metadata.finalizers.length === 0) {
      this.#remove(
        this.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions") as ResourceDef,
        crd,
      );
    } else {
      this.store.put(CRDS, crd, "MODIFIED");
    }
  }
}

const CONTINUE_EXPIRED =
  "The provided continue parameter is too old to display a consistent list result. You can start a new " +
  "list without the continue parameter, or use the continue token in this response to retrieve the remainder of the " +
  "results. Continuing with the provided token results in an inconsistent list - objects that were created, " +
  "modified, or deleted between the time the first chunk was returned and now may show up in the list.";

function encodeContinue(rv: number, last: Entry): string {
  const key = `${last.object.metadata.namespace ?? ""}/${last.object.metadata.name ?? ""}`;
  const text = JSON.stringify({ v: "meta.k8s.io/v1", rv, start: `${key}\u0000` });
  return encoder.encode(text).toBase64({ alphabet: "base64url", omitPadding: true });
}

function decodeContinue(token: string): { rv: number; after: { namespace: string; name: string } } {
  let parsed: unknown;
  try {
    const bytes = Uint8Array.fromBase64(token, { alphabet: "base64url" });
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw badRequest(`invalid continue token: continue key is not valid: ${(error as Error).message}`);
  }
  if (
    !isObject(parsed) || parsed.v !== "meta.k8s.io/v1" || typeof parsed.rv !== "number" ||
    typeof parsed.start !== "string"
  ) {
    throw badRequest(
      "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
    );
  }
  const key = parsed.start.endsWith("\u0000") ? parsed.start.slice(0, -1) : parsed.start;
  const slash = key.indexOf("/");
  return { rv: parsed.rv, after: { namespace: key.slice(0, slash), name: key.slice(slash + 1) } };
}

function goType(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  return typeof value === "object" ? "object" : typeof value;
}

/** What Go's JSON decoder says about ObjectMeta members of the wrong type. */
function metadataShapeProblem(meta: unknown, kind: string): string | undefined {
  if (meta === undefined || meta === null) return undefined;
  if (!isObject(meta)) {
    return `json: cannot unmarshal ${
      goType(meta)
    } into Go struct field ${kind}.metadata of type v1.ObjectMeta`;
  }
  const field = (name: string, type: string, value: unknown) =>
    `json: cannot unmarshal ${
      goType(value)
    } into Go struct field ObjectMeta.metadata.${name} of type ${type}`;
  for (
    const name of [
      "name",
      "generateName",
      "namespace",
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "deletionTimestamp",
    ]
  ) {
    const v = meta[name];
    if (v !== undefined && v !== null && typeof v !== "string") return field(name, "string", v);
  }
  for (const name of ["labels", "annotations"]) {
    const v = meta[name];
    if (v === undefined || v === null) continue;
    if (!isObject(v)) return field(name, "map[string]string", v);
    for (const item of Object.values(v)) if (typeof item !== "string") return field(name, "string", item);
  }
  const finalizers = meta.finalizers;
  if (finalizers !== undefined && finalizers !== null) {
    if (!Array.isArray(finalizers)) return field("finalizers", "[]string", finalizers);
    for (const f of finalizers) if (typeof f !== "string") return field("finalizers", "string", f);
  }
  for (const name of ["ownerReferences", "managedFields"]) {
    const v = meta[name];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) return field(name, "[]v1.OwnerReference", v);
    for (const item of v) if (!isObject(item)) return field(name, "struct", item);
  }
  const generation = meta.generation;
  if (generation !== undefined && generation !== null && !Number.isInteger(generation)) {
    return field("generation", "int64", generation);
  }
  return undefined;
}

function same(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const managed = (o.metadata.managedFields ?? []).map((m) => ({ ...m, time: undefined }));
    return JSON.stringify(
      canonical({ ...o, metadata: { ...o.metadata, managedFields: managed, resourceVersion: undefined } }),
    );
  };
  return strip(a) === strip(b);
}

function deletedDetails(def: ResourceDef, object: KubeObject) {
  return {
    name: object.metadata.name,
    ...(def.group ? { group: def.group } : {}),
    kind: def.plural,
    uid: object.metadata.uid,
  };
}

function qualifiedName(def: ResourceDef): string {
  return def.group ? `${def.plural}.${def.group}` : def.plural;
}

function versionPart(apiVersion: string): string {
  return apiVersion.includes("/") ? apiVersion.split("/")[1] as string : apiVersion;
}

function groupPart(apiVersion: string): string {
  return apiVersion.includes("/") ? apiVersion.split("/")[0] as string : "";
}

function optionsKind(verb: string): string {
  return verb === "create"
    ? "CreateOptions"
    : verb === "update"
    ? "UpdateOptions"
    : verb === "patch"
    ? "PatchOptions"
    : "DeleteOptions";
}

/** The field manager kube-apiserver derives from a User-Agent (`kubectl/v1.32 ...` -> `kubectl`). */
function managerFromAgent(agent: string | null): string {
  if (!agent) return "unknown";
  return agent.split("/")[0]?.trim().slice(0, 128) || "unknown";
}

function notFoundText(): Response {
  return new Response("404 page not found\n", {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

function methodNotAllowedText(): Response {
  return new Response("405: Method Not Allowed", {
    status: 405,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function watchResponse(stream: WatchStream, representation: string): Response {
  void representation;
  return new Response(stream.readable, {
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-cache, private" },
  });
}

async function readText(request: Request): Promise<string> {
  return new TextDecoder().decode(await readBytes(request));
}

async function readBytes(request: Request): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge(MAX_BODY_BYTES);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return all;
}

/** Reads a POST/PUT body as JSON or YAML, with the codec's errors. */
async function readObject(request: Request, def: ResourceDef, kind: string): Promise<KubeObject> {
  const type =
    (request.headers.get("content-type") ?? "application/json").split(";")[0]?.trim().toLowerCase() ?? "";
  if (!BODY_TYPES.includes(type)) throw unsupportedMediaType(BODY_TYPES);
  if (type === "application/vnd.kubernetes.protobuf") {
    try {
      return decodeProtobufObject(await readBytes(request)) as KubeObject;
    } catch (error) {
      if (error instanceof ProtobufError) {
        throw unsupportedMediaType(["application/json", "application/yaml"]);
      }
      throw error;
    }
  }
  const text = await readText(request);
  let value: unknown;
  try {
    value = type === "application/yaml" ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw badRequest(
      `the object provided is unrecognized (must be of type ${kind}): couldn't get version/kind; json parse error: ${
        (error as Error).message
      }`,
    );
  }
  if (!isObject(value)) {
    const what = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    throw badRequest(
      `the object provided is unrecognized (must be of type ${kind}): couldn't get version/kind; json parse error: json: cannot unmarshal ${what} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`,
    );
  }
  void def;
  return value as KubeObject;
}
