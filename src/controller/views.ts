/**
 * @module
 * The projections of Kubernetes objects the operator caches: only the fields its decisions read,
 * so ten thousand namespaces cost little memory, and so the reconcilers are written against small
 * plain types.
 */
import type { KubeObject } from "../kube/resources.ts";
import {
  DESTINATION_ANNOTATION,
  IMPORTED_ANNOTATION,
  MANAGED_ANNOTATION,
  readBridgeAnnotation,
  ROTATED_AT_ANNOTATION,
  ROTATION_HANDLED_ANNOTATION,
} from "../names.ts";

/** A Namespace as the operator sees it. */
export interface NamespaceView {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly finalizers: readonly string[];
  readonly deleting: boolean;
}

/** An ImageStream: only its identity matters. */
export interface ImageStreamView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
}

/** A Secret the operator created (label-selected). */
export interface SecretView {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  readonly type: string;
  /** Base64 `.dockerconfigjson`. */
  readonly dockerConfig: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  /** Only the rotation annotations (`names.ts`): the rest is never read. */
  readonly annotations: Readonly<Record<string, string>>;
}

/** A ServiceAccount's links. */
export interface ServiceAccountView {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  readonly secrets: readonly string[];
  readonly imagePullSecrets: readonly string[];
}

/** A Build the webhook rewrote (others are not cached). */
export interface BuildView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly phase: string;
  /** `<ns>/<is>:<tag>` from the destination annotation. */
  readonly destination: string;
  readonly imported: boolean;
  /** `spec.output.to.name`: the pull spec pushed to. */
  readonly outputName: string;
  readonly outputKind: string;
}

type Meta = KubeObject["metadata"];

function meta(object: KubeObject): Meta {
  return object.metadata ?? {};
}

/** Projects a Namespace. */
export function projectNamespace(object: KubeObject): NamespaceView {
  const m = meta(object);
  return {
    name: m.name ?? "",
    uid: m.uid ?? "",
    resourceVersion: m.resourceVersion ?? "",
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    finalizers: m.finalizers ?? [],
    deleting: Boolean(m.deletionTimestamp),
  };
}

/** Projects an ImageStream. */
export function projectImageStream(object: KubeObject): ImageStreamView {
  const m = meta(object);
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    uid: m.uid ?? "",
    resourceVersion: m.resourceVersion ?? "",
  };
}

/** Projects a Secret. */
export function projectSecret(object: KubeObject): SecretView {
  const m = meta(object);
  const data = (object.data ?? {}) as Record<string, string>;
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    resourceVersion: m.resourceVersion ?? "",
    type: typeof object.type === "string" ? object.type : "",
    dockerConfig: data[".dockerconfigjson"],
    labels: m.labels ?? {},
    annotations: rotationAnnotations(m.annotations ?? {}),
  };
}

function rotationAnnotations(annotations: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [ROTATED_AT_ANNOTATION, ROTATION_HANDLED_ANNOTATION]) {
    const value = annotations[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((r) => (r && typeof r === "object" ? String((r as { name?: unknown }).name ?? "") : ""))
    .filter((n) => n !== "");
}

/** Projects a ServiceAccount. */
export function projectServiceAccount(object: KubeObject): ServiceAccountView {
  const m = meta(object);
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    resourceVersion: m.resourceVersion ?? "",
    secrets: names(object.secrets),
    imagePullSecrets: names(object.imagePullSecrets),
  };
}

/** Projects a Build the webhook rewrote; `undefined` for any other Build. */
export function projectBuild(object: KubeObject): BuildView | undefined {
  const m = meta(object);
  const annotations = m.annotations ?? {};
  if (readBridgeAnnotation(annotations, MANAGED_ANNOTATION) !== "true") return undefined;
  const spec = (object.spec ?? {}) as { output?: { to?: { kind?: unknown; name?: unknown } } };
  const status = (object.status ?? {}) as { phase?: unknown };
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    uid: m.uid ?? "",
    resourceVersion: m.resourceVersion ?? "",
    phase: typeof status.phase === "string" ? status.phase : "",
    destination: readBridgeAnnotation(annotations, DESTINATION_ANNOTATION) ?? "",
    imported: readBridgeAnnotation(annotations, IMPORTED_ANNOTATION) === "true",
    outputName: typeof spec.output?.to?.name === "string" ? spec.output.to.name : "",
    outputKind: typeof spec.output?.to?.kind === "string" ? spec.output.to.kind : "",
  };
}
