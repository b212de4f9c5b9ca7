/**
 * @module
 * The mutating admission chain: every MutatingWebhookConfiguration's webhooks, in name order, whose
 * rules (operations, groups, versions, resources with subresources, scope), namespaceSelector and
 * objectSelector match, are called over HTTPS with an AdmissionReview (`v1` or `v1beta1`, the first
 * the webhook accepts). The serving certificate is verified against `caBundle` for the host the real
 * apiserver would use; the returned JSONPatch is applied; a denial becomes the webhook's Status; a
 * failed call obeys `failurePolicy` and `timeoutSeconds`. Texts follow
 * `k8s.io/apiserver/pkg/admission/plugin/webhook`.
 */
import jsonPatch from "fast-json-patch";
import type { UserInfo } from "./rbac.ts";
import { type LabelRequirement, matchLabels } from "./selectors.ts";
import { badRequest, internalError, KubeStatusError, type StatusDetails } from "./status.ts";
import type { Store } from "./store.ts";
import type { KubeObject, ResourceDef } from "./types.ts";
import { isObject } from "./validation.ts";
import { postJson, WebhookCallError } from "./webhook_client.ts";

const MUTATING = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const SUPPORTED_REVIEW_VERSIONS = ["v1", "v1beta1"];

/** One admission request. */
export interface AdmissionAttributes {
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  def: ResourceDef;
  subresource: string;
  /** Kind of the object sent (differs from the resource's for subresources such as `instantiate`). */
  kind: string;
  namespace: string;
  name: string;
  object: KubeObject | undefined;
  oldObject: KubeObject | undefined;
  user: UserInfo;
  dryRun: boolean;
  options: Record<string, unknown>;
}

/** What the chain did. */
export interface AdmissionResult {
  object: KubeObject | undefined;
  warnings: string[];
  /** Webhooks called, by name (for tests). */
  called: string[];
}

interface Webhook {
  name: string;
  clientConfig?: {
    url?: string;
    caBundle?: string;
    service?: { namespace?: string; name?: string; path?: string; port?: number };
  };
  rules?: Array<
    {
      operations?: string[];
      apiGroups?: string[];
      apiVersions?: string[];
      resources?: string[];
      scope?: string;
    }
  >;
  failurePolicy?: string;
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector || !isObject(selector)) return true;
  const reqs: LabelRequirement[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    reqs.push({ key: k, op: "=", values: [v] });
  }
  for (const e of Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) {
    const op = e.operator === "In"
      ? "in"
      : e.operator === "NotIn"
      ? "notin"
      : e.operator === "Exists"
      ? "exists"
      : "!";
    reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return matchLabels(reqs, labels);
}

function ruleMatches(rule: NonNullable<Webhook["rules"]>[number], a: AdmissionAttributes): boolean {
  const any = (list: string[] | undefined, value: string) =>
    Array.isArray(list) && (list.includes("*") || list.includes(value));
  if (!any(rule.operations, a.operation)) return false;
  if (!any(rule.apiGroups, a.def.group)) return false;
  if (!any(rule.apiVersions, a.def.version)) return false;
  const scope = rule.scope ?? "*";
  if (scope === "Cluster" && a.def.namespaced) return false;
  if (scope === "Namespaced" && !a.def.namespaced) return false;
  const combined = a.subresource ? `${a.def.plural}/${a.subresource}` : a.def.plural;
  for (const r of rule.resources ?? []) {
    if (r === "*/*" || r === combined) return true;
    if (r === "*" && !a.subresource) return true;
    const [res, sub] = r.split("/");
    if (sub !== undefined && a.subresource) {
      if ((res === "*" || res === a.def.plural) && (sub === "*" || sub === a.subresource)) return true;
    }
  }
  return false;
}

function newUid(): string {
  return crypto.randomUUID();
}

function kindOf(def: ResourceDef, kind: string) {
  return { group: def.group, version: def.version, kind };
}

function optionsKind(operation: AdmissionAttributes["operation"]): string {
  return operation === "CREATE"
    ? "CreateOptions"
    : operation === "UPDATE"
    ? "UpdateOptions"
    : operation === "DELETE"
    ? "DeleteOptions"
    : "ConnectOptions";
}

/** The admission chain of one world. */
export class Admission {
  readonly #store: Store;
  readonly #serviceEndpoints: Map<string, string>;

  constructor(store: Store, serviceEndpoints: Map<string, string>) {
    this.#store = store;
    this.#serviceEndpoints = serviceEndpoints;
  }

  #namespaceLabels(a: AdmissionAttributes): Record<string, string> | undefined {
    if (a.def.group === "" && a.def.plural === "namespaces") {
      return (a.object ?? a.oldObject)?.metadata.labels;
    }
    if (!a.def.namespaced) return undefined;
    return this.#store.get("/namespaces", "", a.namespace)?.object.metadata.labels;
  }

  /** Runs the mutating webhooks; throws a {@linkcode KubeStatusError} on denial or a failing call. */
  async mutate(a: AdmissionAttributes): Promise<AdmissionResult> {
    const result: AdmissionResult = { object: a.object, warnings: [], called: [] };
    // Real clusters never send webhook configurations through webhooks (it could lock them out).
    if (a.def.group === "admissionregistration.k8s.io") return result;
    const configs = [...this.#store.entries(MUTATING)].map((e) => e.object);
    for (const config of configs) {
      const hooks = Array.isArray(config.webhooks) ? config.webhooks as Webhook[] : [];
      for (const hook of hooks) {
        if (!isObject(hook) || !(hook.rules ?? []).some((r) => ruleMatches(r, a))) continue;
        const clusterScopedOther = !a.def.namespaced &&
          !(a.def.group === "" && a.def.plural === "namespaces");
        if (!clusterScopedOther && !selectorMatches(hook.namespaceSelector, this.#namespaceLabels(a))) {
          continue;
        }
        // The object selector sees the new object's labels, or the old one's (a missing map is empty).
        const candidates = [result.object, a.oldObject].filter((o) => o !== undefined).map((o) =>
          o.metadata.labels ?? {}
        );
        if (!candidates.some((labels) => selectorMatches(hook.objectSelector, labels))) continue;
        if (a.dryRun && hook.sideEffects !== "None" && hook.sideEffects !== "NoneOnDryRun") {
          throw badRequest(`admission webhook "${hook.name}" does not support dry run`);
        }
        result.called.push(hook.name);
        try {
          const patched = await this.#call(hook, { ...a, object: result.object }, result.warnings);
          if (patched) result.object = patched;
        } catch (error) {
          if (error instanceof WebhookCallFailure) {
            if (hook.failurePolicy === "Ignore") continue;
            throw internalError(error.message);
          }
          throw error;
        }
      }
    }
    return result;
  }

  async #call(hook: Webhook, a: AdmissionAttributes, warnings: string[]): Promise<KubeObject | undefined> {
    const version = (hook.admissionReviewVersions ?? []).find((v) => SUPPORTED_REVIEW_VERSIONS.includes(v));
    if (!version) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": could not create admission objects: webhook does not accept known AdmissionReview versions`,
      );
    }
    const uid = newUid();
    const resource = { group: a.def.group, version: a.def.version, resource: a.def.plural };
    const request: Record<string, unknown> = {
      uid,
      kind: kindOf(a.def, a.kind),
      resource,
      ...(a.subresource ? { subResource: a.subresource } : {}),
      requestKind: kindOf(a.def, a.kind),
      requestResource: resource,
      ...(a.subresource ? { requestSubResource: a.subresource } : {}),
      ...(a.name ? { name: a.name } : {}),
      ...(a.namespace ? { namespace: a.namespace } : {}),
      operation: a.operation,
      userInfo: {
        username: a.user.username,
        ...(a.user.uid ? { uid: a.user.uid } : {}),
        groups: a.user.groups,
      },
      object: a.object ?? null,
      oldObject: a.oldObject ?? null,
      dryRun: a.dryRun,
      options: { kind: optionsKind(a.operation), apiVersion: "meta.k8s.io/v1", ...a.options },
    };
    const review = { kind: "AdmissionReview", apiVersion: `admission.k8s.io/${version}`, request };
    const timeoutSeconds = hook.timeoutSeconds ?? 10;
    const target = this.#target(hook, timeoutSeconds);
    let status: number;
    let text: string;
    try {
      const answer = await postJson({
        ...target,
        body: new TextEncoder().encode(JSON.stringify(review)),
        timeoutMs: timeoutSeconds * 1000,
      });
      status = answer.status;
      text = new TextDecoder().decode(answer.body);
    } catch (error) {
      const why = error instanceof WebhookCallError
        ? error.message
        : `Post "${target.displayUrl}": ${(error as Error).message}`;
      throw new WebhookCallFailure(`failed calling webhook "${hook.name}": failed to call webhook: ${why}`);
    }
    if (status < 200 || status > 299) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": failed to call webhook: an error on the server (${
          JSON.stringify(text.slice(0, 200))
        }) has prevented the request from succeeding`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": received invalid webhook response: ${
          (error as Error).message
        }`,
      );
    }
    const response = isObject(body) ? body.response : undefined;
    if (!isObject(response)) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": received invalid webhook response: webhook response was absent`,
      );
    }
    if (response.uid !== uid) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": received invalid webhook response: expected response.uid=${
          JSON.stringify(uid)
        }, got ${JSON.stringify(response.uid ?? "")}`,
      );
    }
    if (Array.isArray(response.warnings)) warnings.push(...response.warnings.map(String));
    if (response.allowed !== true) {
      const s = isObject(response.status) ? response.status : {};
      const code = typeof s.code === "number" && s.code >= 400 ? s.code : 400;
      const denied = `admission webhook "${hook.name}" denied the request`;
      const message = s.message
        ? `${denied}: ${s.message}`
        : s.reason
        ? `${denied}: ${s.reason}`
        : `${denied} without explanation`;
      throw new KubeStatusError(code, typeof s.reason === "string" ? s.reason : "", message, {
        details: isObject(s.details) ? s.details as StatusDetails : undefined,
      });
    }
    if (response.patch === undefined || response.patch === null || response.patch === "") return undefined;
    if (response.patchType !== "JSONPatch") {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": received invalid webhook response: webhook returned response.patch but not response.patchType`,
      );
    }
    if (!a.object) return undefined;
    try {
      const ops = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(String(response.patch))));
      const copy = structuredClone(a.object);
      return jsonPatch.applyPatch(copy, ops, true, true).newDocument as KubeObject;
    } catch (error) {
      throw internalError((error as Error).message);
    }
  }

  #target(hook: Webhook, timeoutSeconds: number) {
    const cc = hook.clientConfig ?? {};
    const caPem = cc.caBundle ? new TextDecoder().decode(Uint8Array.fromBase64(cc.caBundle)) : undefined;
    const timeout = `timeout=${timeoutSeconds}s`;
    if (cc.url) {
      let url: URL;
      try {
        url = new URL(cc.url);
      } catch {
        throw new WebhookCallFailure(
          `failed calling webhook "${hook.name}": failed to call webhook: parse "${cc.url}": invalid URL`,
        );
      }
      const port = Number(url.port || 443);
      const path = `${url.pathname}${url.search ? `${url.search}&` : "?"}${timeout}`;
      return {
        connect: { hostname: url.hostname.replace(/^\[|\]$/g, ""), port },
        serverName: url.hostname.replace(/^\[|\]$/g, ""),
        caPem,
        path,
        displayUrl: `${url.origin}${path}`,
      };
    }
    const svc = cc.service ?? {};
    const port = svc.port ?? 443;
    const host = `${svc.name}.${svc.namespace}.svc`;
    const path = `${svc.path ?? "/"}?${timeout}`;
    const displayUrl = `https://${host}:${port}${path}`;
    const base = this.#serviceEndpoints.get(`${svc.namespace}/${svc.name}:${port}`);
    if (!base) {
      throw new WebhookCallFailure(
        `failed calling webhook "${hook.name}": failed to call webhook: Post "${displayUrl}": service "${svc.name}" not found`,
      );
    }
    const local = new URL(base);
    return {
      connect: { hostname: local.hostname.replace(/^\[|\]$/g, ""), port: Number(local.port || 443) },
      serverName: host,
      caPem,
      path,
      displayUrl,
    };
  }
}

/** A webhook that could not be called, subject to `failurePolicy`. */
class WebhookCallFailure extends Error {
  override name = "WebhookCallFailure";
}
