/**
 * @module
 * The Kubernetes permissions the operator's code uses, verb by verb. `deploy/rbac` grants exactly
 * these (a test compares them), and `quay-bridge check` asks the API server for each. Why each one
 * is needed and cannot be narrower: docs/security.md.
 */

/** One permission. */
export interface Permission {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  readonly subresource?: string;
  /** Only this object (RBAC `resourceNames`). */
  readonly name?: string;
}

function p(group: string, resource: string, verbs: string[], subresource?: string): Permission[] {
  return verbs.map((verb) => ({ group, resource, verb, ...(subresource ? { subresource } : {}) }));
}

/** The CustomResourceDefinitions `check` looks for, by name. */
export const CHECKED_CRDS = ["quayintegrations.quay.redhat.com", "quayintegrations.redhatcop.redhat.io"];

/** Cluster-wide permissions. */
export const REQUIRED_PERMISSIONS: readonly Permission[] = [
  // Namespaces: watched; patched for the finalizer.
  ...p("", "namespaces", ["get", "list", "watch", "patch"]),
  // Robot Secrets: created, updated, adopted; credentials Secrets read.
  ...p("", "secrets", ["get", "list", "watch", "create", "update"]),
  // Service accounts: watched, patched to link the robot Secrets.
  ...p("", "serviceaccounts", ["get", "list", "watch", "patch"]),
  ...p("", "events", ["create", "patch"]),
  ...p("image.openshift.io", "imagestreams", ["get", "list", "watch"]),
  ...p("image.openshift.io", "imagestreamimports", ["create"]),
  ...p("build.openshift.io", "builds", ["get", "list", "watch", "patch"]),
  ...p("quay.redhat.com", "quayintegrations", ["get", "list", "watch"]),
  ...p("quay.redhat.com", "quayintegrations", ["get", "patch", "update"], "status"),
  ...p("redhatcop.redhat.io", "quayintegrations", ["get", "list", "watch"]),
  ...p("redhatcop.redhat.io", "quayintegrations", ["get", "patch", "update"], "status"),
  // The webhook configuration: its caBundle patched (self-managed certificates); created and updated
  // whole when the operator runs outside the cluster; listed by `check`. Its name is a flag, so no
  // resourceNames (see docs/security.md).
  ...p("admissionregistration.k8s.io", "mutatingwebhookconfigurations", [
    "get",
    "list",
    "create",
    "update",
    "patch",
  ]),
  // `check` reads the two QuayIntegration CRDs, and nothing else.
  ...CHECKED_CRDS.map((name) => ({
    group: "apiextensions.k8s.io",
    resource: "customresourcedefinitions",
    verb: "get",
    name,
  })),
];

/** Permissions in the operator's own namespace (Lease, self-managed webhook certificate). */
export const NAMESPACED_PERMISSIONS: readonly Permission[] = [
  ...p("coordination.k8s.io", "leases", ["get", "create", "update"]),
  ...p("", "secrets", ["get", "create", "update"]),
];
