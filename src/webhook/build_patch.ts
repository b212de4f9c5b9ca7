/**
 * @module
 * What the webhook reads from a Build admission request and the JSON patch that points the Build
 * at Quay. Pure functions over untrusted input: every field is checked for presence and type
 * before use, so no request shape can throw, and every patch operation's parent exists in the
 * object the patch applies to (the upstream webhook got this wrong for Builds without annotations).
 */
import {
  annotationKey,
  DESTINATION_ANNOTATION,
  isValidQuayRepository,
  MANAGED_ANNOTATION,
  splitImageStreamTag,
} from "../names.ts";
import { isJsonObject, type JsonObject, type JsonPatchOperation } from "./review.ts";

/** An image tag: what a registry (and Quay) accepts after the colon. */
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The facts of a Build the webhook may rewrite. */
export interface BuildFacts {
  /** The Build's namespace. */
  readonly namespace: string;
  /** The Build's name (may be empty when the apiserver generates it). */
  readonly name: string;
  /** `spec.output.to.name` as written. */
  readonly outputName: string;
  /** The ImageStream and tag of the output (`latest` when the name has no tag). */
  readonly imageStream: string;
  readonly tag: string;
  /** `spec.output.to.namespace` when set and non-empty; the output's namespace otherwise is the Build's. */
  readonly outputNamespace: string | undefined;
  /** True when `spec.output.to` has a `namespace` member at all (even empty), which must then be removed. */
  readonly hasOutputNamespaceField: boolean;
  /** Whether `metadata` exists, and whether it holds an annotations map. */
  readonly hasMetadata: boolean;
  readonly hasAnnotations: boolean;
  /** True when the apiserver marked the request as a dry run. */
  readonly dryRun: boolean;
}

/** What {@linkcode inspectBuildAdmission} found. */
export type BuildInspection =
  /** Not a Build this webhook rewrites: allow unchanged. `reason` is CamelCase, for logs and metrics. */
  | { readonly kind: "ignore"; readonly reason: string; readonly namespace?: string; readonly name?: string }
  /** A CREATE of a Docker/Source Build with an ImageStreamTag output. */
  | { readonly kind: "candidate"; readonly build: BuildFacts };

function ignore(reason: string, namespace?: string, name?: string): BuildInspection {
  return namespace === undefined ? { kind: "ignore", reason } : { kind: "ignore", reason, namespace, name };
}

function stringField(object: JsonObject, key: string): string | undefined {
  const value = object[key];
  return typeof value === "string" ? value : undefined;
}

function isBuildKind(request: JsonObject): boolean {
  const kind = request.kind;
  return isJsonObject(kind) && kind.group === "build.openshift.io" && kind.kind === "Build";
}

function hasDockerOrSourceStrategy(spec: JsonObject): boolean {
  const strategy = spec.strategy;
  if (!isJsonObject(strategy)) return false;
  const type = strategy.type;
  if (type === "Docker" || type === "Source") return true;
  // Upstream decides by the presence of the strategy object; keep that when the type is absent.
  return type === undefined &&
    (isJsonObject(strategy.dockerStrategy) || isJsonObject(strategy.sourceStrategy));
}

/**
 * Reads an admission request and says whether it is a Build this webhook rewrites. Only CREATE of
 * `build.openshift.io` Build (no subresource) with a Docker or Source strategy and an
 * `ImageStreamTag` output qualifies; malformed objects are ignored (the apiserver's own validation
 * rejects them after admission), never thrown on.
 */
export function inspectBuildAdmission(request: JsonObject): BuildInspection {
  if (request.operation !== "CREATE") return ignore("NotCreate");
  if (!isBuildKind(request)) return ignore("NotABuild");
  const subResource = request.subResource;
  if (subResource !== undefined && subResource !== "" && subResource !== null) return ignore("Subresource");
  const object = request.object;
  if (!isJsonObject(object)) return ignore("NoObject");
  const metadata = object.metadata;
  if (metadata !== undefined && !isJsonObject(metadata)) return ignore("MalformedMetadata");
  const namespace = stringField(request, "namespace") || (metadata && stringField(metadata, "namespace")) ||
    "";
  if (namespace === "") return ignore("NoNamespace");
  const name = stringField(request, "name") || (metadata && stringField(metadata, "name")) || "";
  const spec = object.spec;
  if (!isJsonObject(spec)) return ignore("NoSpec", namespace, name);
  if (!hasDockerOrSourceStrategy(spec)) return ignore("OtherStrategy", namespace, name);
  const output = spec.output;
  if (!isJsonObject(output)) return ignore("NoOutput", namespace, name);
  const to = output.to;
  if (!isJsonObject(to)) return ignore("NoOutputTarget", namespace, name);
  if (to.kind !== "ImageStreamTag") return ignore("OutputNotImageStreamTag", namespace, name);
  const outputName = to.name;
  if (typeof outputName !== "string") return ignore("MalformedOutputName", namespace, name);
  const hasOutputNamespaceField = Object.hasOwn(to, "namespace");
  const rawOutputNamespace = to.namespace;
  if (hasOutputNamespaceField && rawOutputNamespace !== null && typeof rawOutputNamespace !== "string") {
    return ignore("MalformedOutputNamespace", namespace, name);
  }
  const annotations = metadata?.annotations;
  if (annotations !== undefined && annotations !== null && !isJsonObject(annotations)) {
    return ignore("MalformedAnnotations", namespace, name);
  }
  const { imageStream, tag } = splitImageStreamTag(outputName);
  return {
    kind: "candidate",
    build: {
      namespace,
      name,
      outputName,
      imageStream,
      tag,
      outputNamespace: typeof rawOutputNamespace === "string" && rawOutputNamespace !== ""
        ? rawOutputNamespace
        : undefined,
      hasOutputNamespaceField,
      hasMetadata: metadata !== undefined,
      hasAnnotations: isJsonObject(annotations),
      dryRun: request.dryRun === true,
    },
  };
}

/** Why a candidate's output cannot be mapped to a Quay repository, or undefined when it can. */
export function invalidOutputMessage(build: BuildFacts): string | undefined {
  if (!isValidQuayRepository(build.imageStream)) {
    return `quay-bridge: the build output ${JSON.stringify(build.outputName)} names the ImageStream ` +
      `${JSON.stringify(build.imageStream)}, which is not a valid Quay repository name (lower-case ` +
      `letters, digits, ".", "_" and "-", starting with a letter or digit, at most 255 characters). ` +
      `Rename the ImageStream in the BuildConfig's spec.output.to.name, or push to a DockerImage output.`;
  }
  if (!IMAGE_TAG.test(build.tag)) {
    return `quay-bridge: the build output ${JSON.stringify(build.outputName)} has the tag ` +
      `${JSON.stringify(build.tag)}, which is not a valid image tag (letters, digits, "_", "." and "-", ` +
      `not starting with "." or "-", at most 128 characters). Change the tag in the BuildConfig's ` +
      `spec.output.to.name.`;
  }
  return undefined;
}

/** Escapes one JSON Pointer reference token (RFC 6901). */
export function escapePointerToken(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Where a rewritten Build pushes. */
export interface PushTarget {
  readonly registryHost: string;
  readonly organization: string;
  readonly pushSecretName: string;
}

/** `<registryHost>/<organization>/<imagestream>:<tag>`: the Quay pull spec a Build pushes to. */
export function quayPullSpec(build: BuildFacts, target: PushTarget): string {
  return `${target.registryHost}/${target.organization}/${build.imageStream}:${build.tag}`;
}

const MANAGED_PATH = `/metadata/annotations/${escapePointerToken(annotationKey(MANAGED_ANNOTATION))}`;
const DESTINATION_PATH = `/metadata/annotations/${escapePointerToken(annotationKey(DESTINATION_ANNOTATION))}`;

/** Patches already built, by their inputs: Builds of one BuildConfig get the same patch every time. */
const patchCache = new Map<string, readonly JsonPatchOperation[]>();
const PATCH_CACHE_LIMIT = 1024;

/**
 * The upstream-compatible patch, in upstream's order, plus `spec.output.pushSecret`: output kind
 * to `DockerImage`, name to the Quay pull spec, output namespace removed (a DockerImage output
 * with a namespace is invalid), the managed and destination annotations (creating the map first
 * when absent), and the builder robot's Secret as the push secret so any build service account
 * can push. The result is frozen and may be shared between calls with equal inputs.
 */
export function buildOutputPatch(build: BuildFacts, target: PushTarget): readonly JsonPatchOperation[] {
  const key =
    `${target.registryHost}\0${target.organization}\0${target.pushSecretName}\0${build.namespace}\0` +
    `${build.imageStream}\0${build.tag}\0${build.hasOutputNamespaceField}${build.hasMetadata}${build.hasAnnotations}`;
  const cached = patchCache.get(key);
  if (cached !== undefined) return cached;
  const patch: JsonPatchOperation[] = [
    { op: "replace", path: "/spec/output/to/kind", value: "DockerImage" },
    { op: "replace", path: "/spec/output/to/name", value: quayPullSpec(build, target) },
  ];
  if (build.hasOutputNamespaceField) patch.push({ op: "remove", path: "/spec/output/to/namespace" });
  if (!build.hasMetadata) patch.push({ op: "add", path: "/metadata", value: {} });
  if (!build.hasAnnotations) patch.push({ op: "add", path: "/metadata/annotations", value: {} });
  patch.push(
    { op: "add", path: MANAGED_PATH, value: "true" },
    { op: "add", path: DESTINATION_PATH, value: `${build.namespace}/${build.imageStream}:${build.tag}` },
    { op: "add", path: "/spec/output/pushSecret", value: { name: target.pushSecretName } },
  );
  const frozen = deepFreeze(patch);
  if (patchCache.size >= PATCH_CACHE_LIMIT) patchCache.clear();
  patchCache.set(key, frozen);
  return frozen;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}
