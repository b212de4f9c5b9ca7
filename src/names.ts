/**
 * @module
 * The names quay-bridge gives things in Quay and in the cluster, compatible with the upstream
 * Quay Bridge Operator, and Quay's naming rules. Names are derived, never stored: the same
 * inputs always give the same names, which is what makes every sync idempotent.
 */

/** Quay organization and user names (and robot short names): lower-case runs joined by `.`, `_` or `-`. */
const QUAY_NAMESPACE = /^([a-z0-9]+(?:[._-][a-z0-9]+)*)$/;
/** Quay repository names. */
const QUAY_REPOSITORY = /^[a-z0-9][.a-z0-9_-]{0,254}$/;
/** Kubernetes object names (DNS-1123 subdomain). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The namespace finalizer this operator owns. */
export const FINALIZER = "quay.redhat.com/quayintegrations";
/** The predecessor's finalizer, removed where found so migrated namespaces never hang in Terminating. */
export const LEGACY_FINALIZER = "redhatcop.redhat.io/quayintegrations";
/** Annotation OpenShift sets once a project's security context is allocated. */
export const PROJECT_READY_ANNOTATION = "openshift.io/sa.scc.mcs";
/**
 * Annotation on a deleting Namespace: since when (RFC 3339) deleting its Quay organization has failed.
 * On the object, not in memory, so the deletion budget is not granted again by a restart or a new leader.
 */
export const DELETION_FAILING_SINCE_ANNOTATION = "quay.redhat.com/deletion-failing-since";
/** Label on every object the operator creates, so it can watch only its own Secrets. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Value of {@linkcode MANAGED_BY_LABEL}. */
export const MANAGED_BY = "quay-bridge";
/** Field manager for server-side apply and patches. */
export const FIELD_MANAGER = "quay-bridge";
/** Event source component. */
export const COMPONENT = "quay-bridge";

/** A namespace annotation: a new value asks for its robots' tokens to be rotated now. */
export const ROTATE_ANNOTATION = "quay.redhat.com/rotate-credentials";
/** A robot Secret's annotation: when the token it holds was issued (RFC 3339); rotation counts from it. */
export const ROTATED_AT_ANNOTATION = "quay.redhat.com/credentials-rotated-at";
/** A robot Secret's annotation: the value of {@linkcode ROTATE_ANNOTATION} its token already answers. */
export const ROTATION_HANDLED_ANNOTATION = "quay.redhat.com/rotate-credentials-handled";

/** Build annotation base (current) and the predecessor's, which is read too. */
export const ANNOTATION_BASE = "quay-registry-operator.quay.redhat.com";
export const LEGACY_ANNOTATION_BASE = "quay-registry-operator.redhatcop.redhat.io";
/** Build annotation names below the base. */
export const MANAGED_ANNOTATION = "quay-registry-operator-managed";
export const DESTINATION_ANNOTATION = "destination-imagestream";
export const IMPORTED_ANNOTATION = "destination-imagestreamtag-imported";

/** Marker written into the description of repositories created for ImageStreams. */
export const REPOSITORY_MARKER = "Managed by quay-bridge for ImageStream";

/** True when `name` is a valid Quay organization, user or robot short name. */
export function isValidQuayNamespace(name: string): boolean {
  return name.length >= 2 && name.length <= 255 && QUAY_NAMESPACE.test(name);
}

/** True when `name` is a valid Quay repository name. */
export function isValidQuayRepository(name: string): boolean {
  return QUAY_REPOSITORY.test(name);
}

/** True when `name` is a valid Kubernetes object name (DNS-1123 subdomain). */
export function isValidObjectName(name: string): boolean {
  return name.length >= 1 && name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** `<prefix>_<namespace>`: the organization that mirrors a namespace. */
export function organizationName(prefix: string, namespace: string): string {
  return `${prefix}_${namespace}`;
}

/** `<org>+<short>`: a robot's full name, which is its registry user name. */
export function robotFullName(organization: string, shortName: string): string {
  return `${organization}+${shortName}`;
}

/** `<serviceaccount>-quay-<clusterid>`: the dockerconfigjson Secret of a service account's robot. */
export function robotSecretName(serviceAccount: string, clusterId: string): string {
  return `${serviceAccount}-quay-${clusterId.toLowerCase()}`;
}

/**
 * A per-organization e-mail address. Quay rejects addresses already in use, so each organization gets
 * its own; the form is the upstream operator's, so organizations it created look the same.
 */
export function organizationEmail(organization: string): string {
  return `${organization}@redhat.com`;
}

/** Splits `name[:tag]` of an ImageStreamTag; a missing tag means `latest`. */
export function splitImageStreamTag(name: string): { imageStream: string; tag: string } {
  const colon = name.indexOf(":");
  if (colon < 0) return { imageStream: name, tag: "latest" };
  return { imageStream: name.slice(0, colon), tag: name.slice(colon + 1) || "latest" };
}

/** The full annotation key under the current base. */
export function annotationKey(name: string): string {
  return `${ANNOTATION_BASE}/${name}`;
}

/** Reads a Build annotation under the current base, falling back to the predecessor's. */
export function readBridgeAnnotation(
  annotations: Record<string, string> | undefined,
  name: string,
): string | undefined {
  return annotations?.[`${ANNOTATION_BASE}/${name}`] ?? annotations?.[`${LEGACY_ANNOTATION_BASE}/${name}`];
}
