/**
 * @module
 * The Kubernetes and OpenShift resource types quay-bridge reads or writes, and their REST paths.
 */

/** A resource type's coordinates. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

function rt(group: string, version: string, plural: string, kind: string, namespaced: boolean): ResourceType {
  return Object.freeze({ group, version, plural, kind, namespaced });
}

export const NAMESPACES = rt("", "v1", "namespaces", "Namespace", false);
export const SECRETS = rt("", "v1", "secrets", "Secret", true);
export const SERVICE_ACCOUNTS = rt("", "v1", "serviceaccounts", "ServiceAccount", true);
export const EVENTS = rt("", "v1", "events", "Event", true);
export const LEASES = rt("coordination.k8s.io", "v1", "leases", "Lease", true);
export const MUTATING_WEBHOOKS = rt(
  "admissionregistration.k8s.io",
  "v1",
  "mutatingwebhookconfigurations",
  "MutatingWebhookConfiguration",
  false,
);
export const CRDS = rt(
  "apiextensions.k8s.io",
  "v1",
  "customresourcedefinitions",
  "CustomResourceDefinition",
  false,
);
export const IMAGE_STREAMS = rt("image.openshift.io", "v1", "imagestreams", "ImageStream", true);
export const IMAGE_STREAM_IMPORTS = rt(
  "image.openshift.io",
  "v1",
  "imagestreamimports",
  "ImageStreamImport",
  true,
);
export const BUILDS = rt("build.openshift.io", "v1", "builds", "Build", true);
export const QUAY_INTEGRATIONS = rt("quay.redhat.com", "v1", "quayintegrations", "QuayIntegration", false);
export const LEGACY_QUAY_INTEGRATIONS = rt(
  "redhatcop.redhat.io",
  "v1alpha1",
  "quayintegrations",
  "QuayIntegration",
  false,
);
export const SELF_SUBJECT_ACCESS_REVIEWS = rt(
  "authorization.k8s.io",
  "v1",
  "selfsubjectaccessreviews",
  "SelfSubjectAccessReview",
  false,
);

/** `apiVersion` of a resource type (`v1`, `image.openshift.io/v1`). */
export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** `/api/v1/...` or `/apis/<group>/<version>/...` for a collection or one object. */
export function resourcePath(
  type: ResourceType,
  options: { namespace?: string | undefined; name?: string | undefined; subresource?: string | undefined } =
    {},
): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const ns = type.namespaced && options.namespace
    ? `/namespaces/${encodeURIComponent(options.namespace)}`
    : "";
  const name = options.name === undefined ? "" : `/${encodeURIComponent(options.name)}`;
  const sub = options.subresource ? `/${options.subresource}` : "";
  return `${base}${ns}/${type.plural}${name}${sub}`;
}

/** Minimal object metadata the operator reads. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** A list response. */
export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}
