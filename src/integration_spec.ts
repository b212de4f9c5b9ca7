/**
 * @module
 * The QuayIntegration custom resource: its two served forms (`quay.redhat.com/v1` and the
 * predecessor's `redhatcop.redhat.io/v1alpha1`), and their parsing into one validated, normalised
 * {@linkcode Integration}. Parsing never throws: a bad resource yields the list of problems an admin
 * must fix, which become a status condition and an Event.
 */
import { type LabelSelector, matchesLabelSelector, validateLabelSelector } from "./kube/labels.ts";
import { isValidObjectName, isValidQuayNamespace } from "./names.ts";
import { type NotificationSettings, parseNotificationSettings } from "./notifications/settings.ts";

/** Group/version of the current API. */
export const API_V1 = "quay.redhat.com/v1";
/** Group/version of the predecessor's API, still met in the field. */
export const API_LEGACY = "redhatcop.redhat.io/v1alpha1";

/** A Quay role a robot gets through the organization's default permissions. */
export type QuayRole = "read" | "write" | "admin";

/** Default service accounts and their robots' roles (the seed behaviour). */
export const DEFAULT_SERVICE_ACCOUNTS: Readonly<Record<string, QuayRole>> = Object.freeze({
  builder: "write",
  default: "read",
  deployer: "read",
});

/** Names denied unless allow-listed (upstream rule), besides the prefixes below. */
const DEFAULT_DENIED_NAMES = new Set(["default", "openshift", "management-infra"]);
const DEFAULT_DENIED_PREFIXES = ["openshift-", "kube-"];

/** A QuayIntegration as served by the API server (either version), loosely typed. */
export interface QuayIntegrationObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; uid?: string; generation?: number; resourceVersion?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A validated, normalised QuayIntegration. */
export interface Integration {
  /** Object name (cluster-scoped). */
  readonly name: string;
  readonly apiVersion: typeof API_V1 | typeof API_LEGACY;
  readonly uid: string;
  readonly generation: number;
  /** Lower-cased cluster ID; the Secret name suffix. */
  readonly clusterId: string;
  /** Organization name prefix: `organizationPrefix`, else the cluster ID. */
  readonly organizationPrefix: string;
  readonly credentialsSecret: { readonly namespace: string; readonly name: string; readonly key: string };
  /** Base URL of Quay's API, `https://host[:port]`, no trailing slash. */
  readonly quayUrl: string;
  /** `host[:port]` used in image pull specs and dockerconfigjson. */
  readonly registryHost: string;
  readonly insecureRegistry: boolean;
  /** PEM CA certificates trusted for Quay, if any. */
  readonly caBundle: string | undefined;
  readonly allowlistNamespaces: readonly string[];
  readonly denylistNamespaces: readonly string[];
  readonly namespaceSelector: LabelSelector | undefined;
  readonly scheduledImageStreamImport: boolean;
  /** Service accounts linked to robots, in a stable order. */
  readonly serviceAccounts: readonly { readonly name: string; readonly role: QuayRole }[];
  readonly organizationDeletionPolicy: "Delete" | "Retain";
  readonly repositoryDeletionPolicy: "Delete" | "Retain";
  /** `spec.notifications` (v1 only): Quay push notifications; `undefined` when off. */
  readonly notifications?: NotificationSettings | undefined;
  /** Robot tokens are regenerated this often (`spec.credentialRotation`); undefined: only on request. */
  readonly credentialRotation?: { readonly intervalMs: number } | undefined;
  /** The operator's own namespace, denied by default like `openshift-*`. */
  readonly operatorNamespace: string;
}

/** One thing wrong with a QuayIntegration. */
export interface IntegrationProblem {
  /** CamelCase reason for the condition and Event. */
  readonly reason: string;
  /** What is wrong and what to do. */
  readonly message: string;
}

/** What the install decides about every QuayIntegration (from `src/config.ts`). */
export interface IntegrationPolicy {
  /**
   * The operator's namespace: never selected unless allow-listed, like `openshift-*`.
   * @default DEFAULT_OPERATOR_NAMESPACE
   */
  readonly operatorNamespace?: string;
  /**
   * Namespaces a credentials Secret may live in. The operator can read Secrets in every namespace
   * (it manages robot Secrets there), so a reference to any namespace would let whoever may write
   * a QuayIntegration send any Secret's value as a bearer token to a host of their choosing.
   * @default [operatorNamespace]
   */
  readonly credentialsNamespaces?: readonly string[];
}

/** The operator's namespace when none is configured. */
export const DEFAULT_OPERATOR_NAMESPACE = "quay-bridge";

/** The result of {@linkcode parseIntegration}. */
export type ParsedIntegration =
  | { readonly ok: true; readonly integration: Integration }
  | { readonly ok: false; readonly name: string; readonly problems: readonly IntegrationProblem[] };

function str(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function stringList(value: unknown, field: string, problems: IntegrationProblem[]): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    problems.push({ reason: "InvalidSpec", message: `spec.${field} must be a list of namespace names` });
    return [];
  }
  return value as string[];
}

/** Parses `https://host[:port]` (a bare host means https); problems for anything else. */
export function parseQuayHostname(
  raw: unknown,
): { ok: true; url: string; host: string } | { ok: false; message: string } {
  const text = str(raw);
  if (!text) return { ok: false, message: "spec.quayHostname is required, e.g. https://quay.example.com" };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { ok: false, message: `spec.quayHostname "${text}" is not a URL; use https://host[:port]` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, message: `spec.quayHostname "${text}" must use https:// (or http://)` };
  }
  if (url.hostname === "") {
    return { ok: false, message: `spec.quayHostname "${text}" has no host; use https://host[:port]` };
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    return {
      ok: false,
      message: `spec.quayHostname "${text}" must be only scheme, host and port: Quay's API and registry ` +
        `are served from the root of the host`,
    };
  }
  return { ok: true, url: `${url.protocol}//${url.host}`, host: url.host };
}

function parseCredentials(
  spec: Record<string, unknown>,
  legacy: boolean,
  allowed: readonly string[],
  problems: IntegrationProblem[],
): Integration["credentialsSecret"] | undefined {
  const ref = parseCredentialsRef(spec, legacy, problems);
  if (ref && !allowed.includes(ref.namespace)) {
    problems.push({
      reason: "CredentialsNamespaceNotAllowed",
      message: `The credentials Secret must be in ${allowed.map((n) => `"${n}"`).join(" or ")}, not ` +
        `"${ref.namespace}": move the Secret there, or have the admin add the namespace with ` +
        `--credentials-namespaces`,
    });
    return undefined;
  }
  return ref;
}

function parseCredentialsRef(
  spec: Record<string, unknown>,
  legacy: boolean,
  problems: IntegrationProblem[],
): Integration["credentialsSecret"] | undefined {
  if (legacy) {
    const ref = str(spec.credentialsSecretName);
    const parts = ref?.split("/") ?? [];
    if (!ref || parts.length !== 2 || !parts[0] || !parts[1]) {
      problems.push({
        reason: "InvalidCredentialsSecret",
        message: `spec.credentialsSecretName must be "<namespace>/<name>"` + (ref ? `, got "${ref}"` : ""),
      });
      return undefined;
    }
    return { namespace: parts[0], name: parts[1], key: "token" };
  }
  const ref = spec.credentialsSecret as Record<string, unknown> | undefined;
  const namespace = str(ref?.namespace);
  const name = str(ref?.name);
  if (!ref || typeof ref !== "object" || !namespace || !name) {
    problems.push({
      reason: "InvalidCredentialsSecret",
      message: "spec.credentialsSecret needs namespace and name of the Secret holding the Quay OAuth token",
    });
    return undefined;
  }
  return { namespace, name, key: str(ref.key) ?? "token" };
}

function parseServiceAccounts(
  value: unknown,
  problems: IntegrationProblem[],
): Integration["serviceAccounts"] {
  const source = value === undefined || value === null ? DEFAULT_SERVICE_ACCOUNTS : value;
  if (typeof source !== "object" || Array.isArray(source)) {
    problems.push({
      reason: "InvalidServiceAccounts",
      message: "spec.serviceAccounts must map service account names to a role (read, write or admin)",
    });
    return [];
  }
  const out: { name: string; role: QuayRole }[] = [];
  for (const [name, role] of Object.entries(source as Record<string, unknown>)) {
    if (role !== "read" && role !== "write" && role !== "admin") {
      problems.push({
        reason: "InvalidServiceAccounts",
        message: `spec.serviceAccounts.${name} must be read, write or admin`,
      });
    } else if (!isValidObjectName(name) || !isValidQuayNamespace(name)) {
      problems.push({
        reason: "InvalidServiceAccounts",
        message: `spec.serviceAccounts: "${name}" cannot name both a service account and a Quay robot ` +
          `(lower-case letters and digits, joined by single ".", "_" or "-", 2 characters or more)`,
      });
    } else {
      out.push({ name, role });
    }
  }
  if (out.length === 0 && problems.length === 0) {
    problems.push({
      reason: "InvalidServiceAccounts",
      message: "spec.serviceAccounts must name at least one",
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function policy<T extends string>(
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  field: string,
  problems: IntegrationProblem[],
): T {
  if (value === undefined || value === null || value === "") return fallback;
  if (allowed.includes(value as T)) return value as T;
  problems.push({ reason: "InvalidSpec", message: `spec.${field} must be one of ${allowed.join(", ")}` });
  return fallback;
}

/** The shortest rotation interval accepted: rotating more often only multiplies broken pulls. */
export const MIN_ROTATION_INTERVAL_MS = 60_000;

/**
 * Parses a Kubernetes duration as `metav1.Duration` writes it (`720h`, `1h30m`, `90s`); undefined
 * for anything else.
 */
export function parseKubeDuration(text: string): number | undefined {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) {
    total += Number(m[1]) * (units[m[2] ?? ""] ?? 0);
  }
  return Math.round(total);
}

function parseCredentialRotation(
  value: unknown,
  problems: IntegrationProblem[],
): Integration["credentialRotation"] {
  if (value === undefined || value === null) return undefined;
  const raw = typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>).interval
    : undefined;
  const intervalMs = typeof raw === "string" ? parseKubeDuration(raw.trim()) : undefined;
  if (intervalMs === undefined || intervalMs < MIN_ROTATION_INTERVAL_MS) {
    problems.push({
      reason: "InvalidCredentialRotation",
      message: `spec.credentialRotation.interval must be a duration of at least 1m such as 720h` +
        (typeof raw === "string" ? `, got "${raw}"` : ""),
    });
    return undefined;
  }
  return Object.freeze({ intervalMs });
}

/**
 * Parses either served form into an {@linkcode Integration}, or the problems that prevent it. A
 * credentials Secret outside `install.credentialsNamespaces` is a problem (never read).
 */
export function parseIntegration(
  object: QuayIntegrationObject,
  install: IntegrationPolicy = {},
): ParsedIntegration {
  const name = object.metadata?.name ?? "";
  const legacy = object.apiVersion === API_LEGACY;
  const spec = (object.spec && typeof object.spec === "object" ? object.spec : {}) as Record<string, unknown>;
  const problems: IntegrationProblem[] = [];
  const operatorNamespace = install.operatorNamespace ?? DEFAULT_OPERATOR_NAMESPACE;

  const clusterId = (str(spec.clusterID) ?? "openshift").toLowerCase();
  const prefix = str(spec.organizationPrefix) ?? clusterId;
  // A namespace name always fits after "<prefix>_", so checking "<prefix>_a0" checks the prefix.
  if (!isValidQuayNamespace(`${prefix}_a0`)) {
    problems.push({
      reason: str(spec.organizationPrefix) ? "InvalidOrganizationPrefix" : "InvalidClusterID",
      message: `Organization prefix "${prefix}" is not valid in Quay: use lower-case letters and digits, ` +
        `joined by single ".", "_" or "-" (from spec.${
          str(spec.organizationPrefix) ? "organizationPrefix" : "clusterID"
        })`,
    });
  }
  if (!isValidObjectName(`builder-quay-${clusterId}`)) {
    problems.push({
      reason: "InvalidClusterID",
      message: `spec.clusterID "${clusterId}" cannot be part of a Secret name; use letters, digits and "-"`,
    });
  }

  const credentialsSecret = parseCredentials(
    spec,
    legacy,
    install.credentialsNamespaces ?? [operatorNamespace],
    problems,
  );
  const host = parseQuayHostname(spec.quayHostname);
  if (!host.ok) problems.push({ reason: "InvalidQuayHostname", message: host.message });

  const caBundle = str(spec.caBundle);
  if (caBundle !== undefined && !caBundle.includes("-----BEGIN CERTIFICATE-----")) {
    problems.push({ reason: "InvalidCABundle", message: "spec.caBundle must hold PEM-encoded certificates" });
  }
  const selectorProblems = validateLabelSelector(spec.namespaceSelector);
  for (const message of selectorProblems) problems.push({ reason: "InvalidNamespaceSelector", message });

  const allow = stringList(
    legacy ? spec.whitelistNamespaces : spec.allowlistNamespaces,
    "allowlistNamespaces",
    problems,
  );
  const deny = stringList(
    legacy ? spec.blacklistNamespaces : spec.denylistNamespaces,
    "denylistNamespaces",
    problems,
  );
  const serviceAccounts = parseServiceAccounts(spec.serviceAccounts, problems);
  const organizationDeletionPolicy = policy(
    spec.organizationDeletionPolicy,
    ["Delete", "Retain"] as const,
    "Delete",
    "organizationDeletionPolicy",
    problems,
  );
  const repositoryDeletionPolicy = policy(
    spec.repositoryDeletionPolicy,
    ["Delete", "Retain"] as const,
    "Retain",
    "repositoryDeletionPolicy",
    problems,
  );

  const notifications = legacy
    ? { ok: true as const, settings: undefined }
    : parseNotificationSettings(spec.notifications);
  if (!notifications.ok) problems.push({ reason: "InvalidNotifications", message: notifications.message });
  // A v1 field: the predecessor's API has no rotation.
  const credentialRotation = legacy ? undefined : parseCredentialRotation(spec.credentialRotation, problems);

  if (problems.length > 0 || !credentialsSecret || !host.ok) return { ok: false, name, problems };
  return {
    ok: true,
    integration: Object.freeze({
      name,
      apiVersion: legacy ? API_LEGACY : API_V1,
      uid: object.metadata?.uid ?? "",
      generation: object.metadata?.generation ?? 0,
      clusterId,
      organizationPrefix: prefix,
      credentialsSecret: Object.freeze(credentialsSecret),
      quayUrl: host.url,
      registryHost: host.host,
      insecureRegistry: spec.insecureRegistry === true,
      caBundle,
      allowlistNamespaces: Object.freeze(allow),
      denylistNamespaces: Object.freeze(deny),
      namespaceSelector: spec.namespaceSelector ? spec.namespaceSelector as LabelSelector : undefined,
      scheduledImageStreamImport: spec.scheduledImageStreamImport === true,
      serviceAccounts: Object.freeze(serviceAccounts),
      organizationDeletionPolicy,
      repositoryDeletionPolicy,
      notifications: notifications.ok ? notifications.settings : undefined,
      credentialRotation,
      operatorNamespace,
    }),
  };
}

/** The namespace facts selection depends on. */
export interface NamespaceFacts {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>> | undefined;
}

/** The part of a QuayIntegration that picks namespaces (an {@linkcode Integration} is one). */
export interface NamespaceSelection {
  readonly allowlistNamespaces: readonly string[];
  readonly denylistNamespaces: readonly string[];
  readonly namespaceSelector: LabelSelector | undefined;
  /** The operator's own namespace, denied by default like `openshift-*`. */
  readonly operatorNamespace?: string;
}

/**
 * The selection of a resource whose spec may be invalid elsewhere, so the namespaces it would
 * select can be told apart from the rest. `undefined` when the selection fields themselves cannot
 * be parsed: such a resource selects nothing.
 */
export function parseSelection(
  object: QuayIntegrationObject,
  install: IntegrationPolicy = {},
): NamespaceSelection | undefined {
  const legacy = object.apiVersion === API_LEGACY;
  const spec = (object.spec && typeof object.spec === "object" ? object.spec : {}) as Record<string, unknown>;
  const problems: IntegrationProblem[] = [];
  const allow = stringList(legacy ? spec.whitelistNamespaces : spec.allowlistNamespaces, "", problems);
  const deny = stringList(legacy ? spec.blacklistNamespaces : spec.denylistNamespaces, "", problems);
  if (problems.length > 0 || validateLabelSelector(spec.namespaceSelector).length > 0) return undefined;
  return {
    allowlistNamespaces: allow,
    denylistNamespaces: deny,
    namespaceSelector: spec.namespaceSelector ? spec.namespaceSelector as LabelSelector : undefined,
    operatorNamespace: install.operatorNamespace ?? DEFAULT_OPERATOR_NAMESPACE,
  };
}

/**
 * True when `integration` manages `namespace`. The upstream rule, in order: deny-listed → no;
 * allow-listed → yes; `default`, `openshift`, `management-infra`, `openshift-*`, `kube-*` and the
 * operator's own namespace → no;
 * otherwise yes only when the allow list is empty. `namespaceSelector` is ANDed with the result.
 */
export function selectsNamespace(integration: NamespaceSelection, namespace: NamespaceFacts): boolean {
  return listsAllow(integration, namespace.name) &&
    matchesLabelSelector(integration.namespaceSelector, namespace.labels);
}

function listsAllow(integration: NamespaceSelection, name: string): boolean {
  if (integration.denylistNamespaces.includes(name)) return false;
  if (integration.allowlistNamespaces.includes(name)) return true;
  if (
    DEFAULT_DENIED_NAMES.has(name) || name === integration.operatorNamespace ||
    DEFAULT_DENIED_PREFIXES.some((p) => name.startsWith(p))
  ) return false;
  return integration.allowlistNamespaces.length === 0;
}

/** The service account whose robot pushes builds: `builder` if configured, else the first with write. */
export function pushServiceAccount(integration: Integration): string | undefined {
  const accounts = integration.serviceAccounts;
  if (accounts.some((a) => a.name === "builder" && a.role !== "read")) return "builder";
  return accounts.find((a) => a.role !== "read")?.name;
}
