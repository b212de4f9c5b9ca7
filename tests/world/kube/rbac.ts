/**
 * @module
 * Authorization as kube-apiserver's RBAC authorizer decides it, from the Roles, ClusterRoles and
 * bindings stored in the world (`system:masters` bypasses, as in a real cluster). Also the default
 * cluster roles a fresh cluster has (`cluster-admin`, `admin`, `edit`, `view`, `system:discovery`,
 * `system:basic-user`, `system:public-info-viewer`) so discovery and self-reviews work for every
 * authenticated user, and the rule listing a SelfSubjectRulesReview answers.
 */
import type { Store } from "./store.ts";
import type { KubeObject } from "./types.ts";
import { isObject } from "./validation.ts";

/** Who is asking. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

/** What is asked, as `authorizer.Attributes`. */
export interface Attributes {
  user: UserInfo;
  verb: string;
  resourceRequest: boolean;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  path: string;
}

/** The decision, with the reason RBAC gives. */
export interface Decision {
  allowed: boolean;
  reason: string;
}

interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

const ROLES = "rbac.authorization.k8s.io/roles";
const CLUSTER_ROLES = "rbac.authorization.k8s.io/clusterroles";
const ROLE_BINDINGS = "rbac.authorization.k8s.io/rolebindings";
const CLUSTER_ROLE_BINDINGS = "rbac.authorization.k8s.io/clusterrolebindings";

function has(list: string[] | undefined, value: string): boolean {
  return Array.isArray(list) && (list.includes("*") || list.includes(value));
}

function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === "*" || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nonResourceMatches(rule: PolicyRule, path: string): boolean {
  for (const url of rule.nonResourceURLs ?? []) {
    if (url === "*" || url === path) return true;
    if (url.endsWith("*") && path.startsWith(url.slice(0, -1))) return true;
  }
  return false;
}

/** True when one policy rule allows the request. */
export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return nonResourceMatches(rule, a.path);
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  if (!resourceMatches(rule, a.resource, a.subresource)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== "" && names.includes(a.name));
}

function subjectMatches(subject: unknown, user: UserInfo, bindingNamespace: string): boolean {
  if (!isObject(subject)) return false;
  switch (subject.kind) {
    case "User":
      return subject.name === user.username;
    case "Group":
      return typeof subject.name === "string" && user.groups.includes(subject.name);
    case "ServiceAccount": {
      const ns = (subject.namespace as string | undefined) || bindingNamespace;
      return user.username === `system:serviceaccount:${ns}:${subject.name}`;
    }
  }
  return false;
}

function rulesOf(role: KubeObject | undefined): PolicyRule[] {
  return Array.isArray(role?.rules) ? (role.rules as PolicyRule[]).filter(isObject) : [];
}

function describeSubject(user: UserInfo, subject: Record<string, unknown>, ns: string): string {
  switch (subject.kind) {
    case "Group":
      return `Group "${subject.name}"`;
    case "ServiceAccount":
      return `ServiceAccount "${subject.name}/${(subject.namespace as string) || ns}"`;
    default:
      return `User "${user.username}"`;
  }
}

/** The RBAC authorizer over the world's store. */
export class Authorizer {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Decides a request. */
  authorize(a: Attributes): Decision {
    if (a.user.groups.includes("system:masters")) return { allowed: true, reason: "" };
    const errors: string[] = [];
    const check = (binding: KubeObject, bindingNs: string): string | undefined => {
      const subjects = Array.isArray(binding.subjects) ? binding.subjects : [];
      const subject = subjects.find((s) => subjectMatches(s, a.user, bindingNs)) as
        | Record<string, unknown>
        | undefined;
      if (!subject) return undefined;
      const ref = isObject(binding.roleRef) ? binding.roleRef : {};
      const role = ref.kind === "Role"
        ? this.#store.get(ROLES, bindingNs, String(ref.name))?.object
        : this.#store.get(CLUSTER_ROLES, "", String(ref.name))?.object;
      if (!role) {
        errors.push(
          ref.kind === "Role"
            ? `role.rbac.authorization.k8s.io "${ref.name}" not found`
            : `clusterrole.rbac.authorization.k8s.io "${ref.name}" not found`,
        );
        return undefined;
      }
      if (!rulesOf(role).some((r) => ruleAllows(r, a))) return undefined;
      const where = bindingNs
        ? `RoleBinding "${binding.metadata.name}/${bindingNs}"`
        : `ClusterRoleBinding "${binding.metadata.name}"`;
      const roleText = ref.kind === "Role" ? `Role "${ref.name}"` : `ClusterRole "${ref.name}"`;
      return `RBAC: allowed by ${where} of ${roleText} to ${describeSubject(a.user, subject, bindingNs)}`;
    };
    for (const entry of this.#store.entries(CLUSTER_ROLE_BINDINGS)) {
      const reason = check(entry.object, "");
      if (reason) return { allowed: true, reason };
    }
    if (a.namespace) {
      for (const entry of this.#store.entries(ROLE_BINDINGS, a.namespace)) {
        const reason = check(entry.object, a.namespace);
        if (reason) return { allowed: true, reason };
      }
    }
    return { allowed: false, reason: errors.length > 0 ? `RBAC: ${errors.join(", ")}` : "" };
  }

  /** The rules that apply to a user in a namespace (SelfSubjectRulesReview). */
  rulesFor(
    user: UserInfo,
    namespace: string,
  ): { resourceRules: PolicyRule[]; nonResourceRules: PolicyRule[] } {
    const rules: PolicyRule[] = [];
    if (user.groups.includes("system:masters")) {
      rules.push({ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }, {
        verbs: ["*"],
        nonResourceURLs: ["*"],
      });
    }
    const collect = (binding: KubeObject, ns: string) => {
      const subjects = Array.isArray(binding.subjects) ? binding.subjects : [];
      if (!subjects.some((s) => subjectMatches(s, user, ns))) return;
      const ref = isObject(binding.roleRef) ? binding.roleRef : {};
      const role = ref.kind === "Role"
        ? this.#store.get(ROLES, ns, String(ref.name))?.object
        : this.#store.get(CLUSTER_ROLES, "", String(ref.name))?.object;
      rules.push(...rulesOf(role));
    };
    for (const entry of this.#store.entries(CLUSTER_ROLE_BINDINGS)) collect(entry.object, "");
    if (namespace) {
      for (const entry of this.#store.entries(ROLE_BINDINGS, namespace)) collect(entry.object, namespace);
    }
    const clean = (r: PolicyRule) =>
      Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as PolicyRule;
    return {
      resourceRules: rules.filter((r) => !r.nonResourceURLs?.length).map((r) =>
        clean({
          verbs: r.verbs,
          apiGroups: r.apiGroups,
          resources: r.resources,
          resourceNames: r.resourceNames,
        })
      ),
      nonResourceRules: rules.filter((r) => r.nonResourceURLs?.length).map((r) =>
        clean({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs })
      ),
    };
  }
}

/** The words of a denial, as kube-apiserver's `forbiddenMessage`. */
export function forbiddenText(a: Attributes, reason: string): string {
  let text: string;
  if (!a.resourceRequest) {
    text = `User "${a.user.username}" cannot ${a.verb} path "${a.path}"`;
  } else {
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    text = a.namespace
      ? `User "${a.user.username}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" in the namespace "${a.namespace}"`
      : `User "${a.user.username}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" at the cluster scope`;
  }
  return reason ? `${text}: ${reason}` : text;
}

const READ = ["get", "list", "watch"];
const WRITE = ["create", "delete", "deletecollection", "patch", "update"];

function clusterRole(name: string, rules: PolicyRule[], labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: {
      name,
      labels: { "kubernetes.io/bootstrapping": "rbac-defaults", ...labels },
      annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" },
    },
    rules,
  };
}

function clusterBinding(name: string, role: string, groups: string[]): KubeObject {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: {
      name,
      labels: { "kubernetes.io/bootstrapping": "rbac-defaults" },
      annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" },
    },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
    subjects: groups.map((g) => ({ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: g })),
  };
}

/** The RBAC objects of a fresh cluster (simplified `admin`/`edit`/`view`, without aggregation). */
export function defaultRbac(): KubeObject[] {
  const everyday = [
    {
      apiGroups: [""],
      resources: ["configmaps", "secrets", "serviceaccounts", "services", "pods", "events"],
    },
    { apiGroups: ["apps"], resources: ["deployments"] },
    { apiGroups: ["image.openshift.io"], resources: ["imagestreams", "imagestreamimports"] },
    { apiGroups: ["build.openshift.io"], resources: ["builds", "buildconfigs", "buildconfigs/instantiate"] },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"] },
  ];
  return [
    clusterRole("cluster-admin", [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }, {
      nonResourceURLs: ["*"],
      verbs: ["*"],
    }]),
    clusterRole("admin", [
      ...everyday.map((r) => ({ ...r, verbs: [...READ, ...WRITE] })),
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles", "rolebindings"],
        verbs: [...READ, ...WRITE],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: READ },
    ]),
    clusterRole("edit", [
      ...everyday.map((r) => ({ ...r, verbs: [...READ, ...WRITE] })),
      { apiGroups: [""], resources: ["namespaces"], verbs: READ },
    ]),
    clusterRole("view", [
      ...everyday.filter((r) => !r.resources.includes("secrets")).map((r) => ({ ...r, verbs: READ })),
      {
        apiGroups: [""],
        resources: ["configmaps", "serviceaccounts", "services", "pods", "events", "namespaces"],
        verbs: READ,
      },
    ]),
    clusterRole("system:discovery", [{
      nonResourceURLs: [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
      ],
      verbs: ["get"],
    }]),
    clusterRole("system:basic-user", [{
      apiGroups: ["authorization.k8s.io"],
      resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
      verbs: ["create"],
    }]),
    clusterRole("system:public-info-viewer", [{
      nonResourceURLs: ["/healthz", "/livez", "/readyz", "/version", "/version/"],
      verbs: ["get"],
    }]),
    clusterBinding("cluster-admin", "cluster-admin", ["system:masters"]),
    clusterBinding("system:discovery", "system:discovery", ["system:authenticated"]),
    clusterBinding("system:basic-user", "system:basic-user", ["system:authenticated"]),
    clusterBinding("system:public-info-viewer", "system:public-info-viewer", [
      "system:authenticated",
      "system:unauthenticated",
    ]),
  ];
}
