/**
 * @module
 * The Docker Registry HTTP API v2 of the test world's Quay, on the same host and port as the REST
 * API. `/v2/auth` turns Basic credentials (robot `org+short` with its token, or `$oauthtoken` with
 * an OAuth token) into a bearer token granting only the actions the identity holds on each
 * requested repository (`endpoints/v2/v2auth.py`); every other route checks that grant, as Quay's
 * `_require_repo_permission` does, and answers 401 `UNAUTHORIZED` with a challenge otherwise.
 * Blobs, monolithic and chunked uploads, cross-repository mounts, manifests (OCI and Docker schema 2,
 * images and indexes, their blobs verified) and tag listing are served from memory.
 */
import {
  bearerChallenge,
  bytesResponse,
  emptyResponse,
  RegistryError,
  registryErrorResponse,
} from "./http_util.ts";
import { spawnRepoPush } from "./notifications.ts";
import type { RouteDef } from "./router.ts";
import {
  type Identity,
  type ManifestRecord,
  type QuayState,
  randomString,
  REPOSITORY_NAME_REGEX,
  type RepositoryRecord,
} from "./state.ts";

/** What a registry handler gets. */
export interface RegistryContext {
  readonly req: Request;
  readonly url: URL;
  readonly params: Record<string, string>;
  readonly state: QuayState;
  readonly host: string;
}

/** A registry handler. */
export type RegistryHandler = (ctx: RegistryContext) => Response | Promise<Response>;

/** Turns a thrown error into the registry's answer; `undefined` for errors that are not the registry's. */
export function registryErrorToResponse(
  error: unknown,
  ctx: { host: string; req: Request },
): Response | undefined {
  if (error instanceof RegistryError) {
    return registryErrorResponse(error, ctx.host, ctx.req.method === "HEAD");
  }
  return undefined;
}

const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
const MAX_BLOB = 64 * 1024 * 1024;
const MAX_MANIFEST = 4 * 1024 * 1024;
const DIGEST_REGEX = /^sha256:[a-f0-9]{64}$/;
const TAG_REGEX = /^[\w][\w.-]{0,127}$/;

/** `SCOPE_REGEX_TEMPLATE` of `v2auth.py`: the repository may be prefixed with this registry's host. */
function scopeRegex(host: string): RegExp {
  const escaped = host.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^repository:((?:${escaped}\\/)?((?:[.a-zA-Z0-9_-]+\\/)*[.a-zA-Z0-9_-]+)):((?:push|pull|\\*)(?:,(?:push|pull|\\*))*)$`,
  );
}

const IMAGE_TYPES = new Set([
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
]);
const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

const REGISTRY_HEADERS = { "docker-distribution-api-version": "registry/2.0" };

/** Hex SHA-256 digest of bytes, as `sha256:<hex>`. */
export async function sha256Digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const size = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const length = Number(req.headers.get("content-length") ?? "0");
  if (length > limit) {
    throw new RegistryError("SIZE_INVALID", "provided length did not match content length", 400);
  }
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.byteLength > limit) {
    throw new RegistryError("SIZE_INVALID", "provided length did not match content length", 400);
  }
  return bytes;
}

function splitName(name: string): { ns: string; repo: string } {
  const slash = name.indexOf("/");
  return { ns: name.slice(0, slash), repo: name.slice(slash + 1) };
}

// ---- identity and grants ----------------------------------------------------------------------

function decodeBasic(header: string): { username: string; password: string } | undefined {
  const m = /^basic\s+(\S+)\s*$/i.exec(header);
  if (!m?.[1]) return undefined;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0)),
    );
    const colon = text.indexOf(":");
    if (colon < 0) return undefined;
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  } catch {
    return undefined;
  }
}

/** `validate_basic_auth` for the registry: the identity, or the message of a failed login. */
function basicIdentity(state: QuayState, header: string): Identity | { error: string } {
  const creds = decodeBasic(header);
  if (!creds) return { error: "Invalid Username or Password" };
  if (creds.username === "$oauthtoken") {
    const identity = state.identityForToken(creds.password);
    return identity ?? { error: "OAuth access token could not be validated" };
  }
  if (creds.username.includes("+")) {
    const robot = state.lookupRobot(creds.username);
    if (!robot) return { error: "Could not find robot with specified username" };
    if (robot.token !== creds.password) {
      return { error: `Could not find robot with username: ${creds.username} and supplied password.` };
    }
    robot.lastAccessed = new Date();
    return { name: robot.name, robot: true, scopes: null };
  }
  return { error: "Invalid Username or Password" };
}

/** `_authorize_or_downscope_request`: the actions granted on one requested scope. */
function authorizeScope(
  state: QuayState,
  host: string,
  scope: string,
  who: Identity | null,
): { name: string; actions: string[] } {
  const m = scopeRegex(host).exec(scope);
  if (!m) {
    throw new RegistryError("INVALID_REQUEST", `Unable to decode repository and actions: ${scope}`, 400);
  }
  const namespaceAndRepo = m[2] ?? "";
  const requested = (m[3] ?? "").split(",");
  const parts = namespaceAndRepo.split("/");
  const [ns, repo] = parts.length === 1
    ? ["library", parts[0] ?? ""]
    : [parts[0] ?? "", parts.slice(1).join("/")];
  if (!REPOSITORY_NAME_REGEX.test(repo)) {
    if (parts.length > 2) {
      throw new RegistryError(
        "NAME_INVALID",
        `Nested repositories are not supported. Found: ${namespaceAndRepo}`,
        400,
      );
    }
    throw new RegistryError("NAME_INVALID", `Invalid repository name: ${namespaceAndRepo}`, 400);
  }
  let existing = state.getRepository(ns, repo);
  const actions: string[] = [];
  if (requested.includes("push") && who) {
    if (existing) {
      if (state.repositoryRole(who, ns, repo) >= 2) {
        if (existing.kind !== "image") throw unsupportedKind(existing);
        actions.push("push");
      }
    } else if (!who.robot && state.canCreateRepository(who, ns)) {
      // Push-to-create: a user allowed to create repositories in the namespace gets one on push.
      existing = state.createRepository(ns, repo, who.name, {
        visibility: "private",
        description: "",
        kind: "image",
      });
      actions.push("push");
    }
  }
  if (requested.includes("pull")) {
    const canRead = (who !== null && state.repositoryRole(who, ns, repo) >= 1) ||
      existing?.visibility === "public";
    if (canRead) {
      if (existing && existing.kind !== "image") throw unsupportedKind(existing);
      actions.push("pull");
    }
  }
  if (requested.includes("*") && who && existing && state.repositoryRole(who, ns, repo) >= 3) {
    actions.push("*");
  }
  return { name: `${ns}/${repo}`, actions };
}

function unsupportedKind(repo: RepositoryRecord): RegistryError {
  return new RegistryError(
    "UNSUPPORTED",
    `This repository is for managing ${repo.kind} and not container images.`,
    405,
  );
}

function v2Auth(ctx: RegistryContext): Response {
  const { state, req, url } = ctx;
  const header = req.headers.get("authorization") ?? "";
  let who: Identity | null = null;
  if (header) {
    const result = basicIdentity(state, header);
    if ("error" in result) throw new RegistryError("UNAUTHORIZED", result.error, 401);
    who = result;
  }
  const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== "");
  if (!who && scopes.length === 0) {
    throw new RegistryError("UNAUTHORIZED", "access to the requested resource is not authorized", 401);
  }
  const access = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const granted = authorizeScope(state, ctx.host, scope, who);
    const set = access.get(granted.name) ?? new Set<string>();
    for (const action of granted.actions) set.add(action);
    access.set(granted.name, set);
  }
  const token = randomString(48);
  if (state.registryTokens.size >= 10_000) {
    const now = Date.now();
    for (const [t, g] of state.registryTokens) if (g.expiresAt < now) state.registryTokens.delete(t);
  }
  state.registryTokens.set(token, { subject: who, access, expiresAt: Date.now() + TOKEN_LIFETIME_MS });
  return bytesResponse(new TextEncoder().encode(JSON.stringify({ token })), {
    headers: { "content-type": "application/json", "cache-control": "no-cache, no-store, must-revalidate" },
  });
}

function bearerGrant(ctx: RegistryContext): ReturnType<QuayState["registryTokens"]["get"]> {
  const m = /^bearer\s+(\S+)\s*$/i.exec(ctx.req.headers.get("authorization") ?? "");
  if (!m?.[1]) return undefined;
  const grant = ctx.state.registryTokens.get(m[1]);
  if (!grant) return undefined;
  if (grant.expiresAt < Date.now()) {
    ctx.state.registryTokens.delete(m[1]);
    return undefined;
  }
  return grant;
}

/**
 * Checks the bearer token grants `action` on `name` (public repositories are readable by anyone),
 * then that the repository exists. Order and answers as Quay's `_require_repo_permission`.
 */
function requireRepository(ctx: RegistryContext, action: "pull" | "push"): RepositoryRecord {
  const name = ctx.params.name ?? "";
  const grant = bearerGrant(ctx);
  const allowed = grant?.access.get(name)?.has(action) ?? false;
  const { ns, repo } = splitName(name);
  const existing = ctx.state.getRepository(ns, repo);
  if (!allowed && !(action === "pull" && existing?.visibility === "public")) {
    throw new RegistryError("UNAUTHORIZED", "access to the requested resource is not authorized", 401, {
      challenge: { repository: name, actions: action === "pull" ? ["pull"] : ["pull", "push"] },
    });
  }
  if (!existing) throw new RegistryError("NAME_UNKNOWN", "repository name not known to registry", 404);
  if (existing.kind !== "image") throw unsupportedKind(existing);
  return existing;
}

// ---- handlers ---------------------------------------------------------------------------------

function v2Root(ctx: RegistryContext): Response {
  const authed = bearerGrant(ctx) !== undefined;
  return bytesResponse(new TextEncoder().encode("true"), {
    status: authed ? 200 : 401,
    headers: {
      ...REGISTRY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "www-authenticate": bearerChallenge(ctx.host),
    },
    headOnly: ctx.req.method === "HEAD",
  });
}

function blobResponse(repo: RepositoryRecord, digest: string, head: boolean): Response {
  const bytes = repo.blobs.get(digest);
  if (!bytes) {
    throw new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", 404, { detail: { digest } });
  }
  return bytesResponse(bytes, {
    headers: {
      ...REGISTRY_HEADERS,
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
    },
    headOnly: head,
  });
}

function getBlob(ctx: RegistryContext): Response {
  const repo = requireRepository(ctx, "pull");
  return blobResponse(repo, ctx.params.digest ?? "", ctx.req.method === "HEAD");
}

async function storeBlob(
  repo: RepositoryRecord,
  bytes: Uint8Array,
  expected: string | null,
): Promise<string> {
  if (!expected) {
    throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400);
  }
  if (!DIGEST_REGEX.test(expected)) {
    throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400, {
      detail: { digest: expected },
    });
  }
  const actual = await sha256Digest(bytes);
  if (actual !== expected) {
    throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400, {
      detail: { expected, actual },
    });
  }
  repo.blobs.set(actual, bytes);
  return actual;
}

function blobCreated(name: string, digest: string): Response {
  return emptyResponse(201, {
    ...REGISTRY_HEADERS,
    location: `/v2/${name}/blobs/${digest}`,
    "docker-content-digest": digest,
    "content-length": "0",
  });
}

function uploadAccepted(name: string, id: string, size: number, status = 202): Response {
  return emptyResponse(status, {
    ...REGISTRY_HEADERS,
    location: `/v2/${name}/blobs/uploads/${id}`,
    "docker-upload-uuid": id,
    range: `0-${Math.max(0, size - 1)}`,
    "content-length": "0",
  });
}

async function startUpload(ctx: RegistryContext): Promise<Response> {
  const { state, url } = ctx;
  const name = ctx.params.name ?? "";
  const repo = requireRepository(ctx, "push");
  const mount = url.searchParams.get("mount");
  const from = url.searchParams.get("from");
  if (mount && from) {
    const grant = bearerGrant(ctx);
    const source = state.getRepository(splitName(from).ns, splitName(from).repo);
    const bytes = source?.blobs.get(mount);
    const readable = grant?.access.get(from)?.has("pull") || source?.visibility === "public";
    if (bytes && readable) {
      repo.blobs.set(mount, bytes);
      return blobCreated(name, mount);
    }
  }
  const body = await readBody(ctx.req, MAX_BLOB);
  const digest = url.searchParams.get("digest");
  if (digest) return blobCreated(name, await storeBlob(repo, body, digest));
  const id = crypto.randomUUID();
  state.uploads.set(id, { repository: name, chunks: body.byteLength ? [body] : [], size: body.byteLength });
  return uploadAccepted(name, id, body.byteLength);
}

function upload(
  ctx: RegistryContext,
): { id: string; record: NonNullable<ReturnType<QuayState["uploads"]["get"]>> } {
  const id = ctx.params.uuid ?? "";
  const record = ctx.state.uploads.get(id);
  if (!record || record.repository !== ctx.params.name) {
    throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404);
  }
  return { id, record };
}

async function patchUpload(ctx: RegistryContext): Promise<Response> {
  requireRepository(ctx, "push");
  const { id, record } = upload(ctx);
  const body = await readBody(ctx.req, MAX_BLOB - record.size);
  record.chunks.push(body);
  record.size += body.byteLength;
  return uploadAccepted(ctx.params.name ?? "", id, record.size);
}

async function finishUpload(ctx: RegistryContext): Promise<Response> {
  const repo = requireRepository(ctx, "push");
  const { id, record } = upload(ctx);
  const body = await readBody(ctx.req, MAX_BLOB - record.size);
  const bytes = concat([...record.chunks, body]);
  const digest = await storeBlob(repo, bytes, ctx.url.searchParams.get("digest"));
  ctx.state.uploads.delete(id);
  return blobCreated(ctx.params.name ?? "", digest);
}

function uploadStatus(ctx: RegistryContext): Response {
  requireRepository(ctx, "push");
  const { id, record } = upload(ctx);
  return uploadAccepted(ctx.params.name ?? "", id, record.size, 204);
}

function cancelUpload(ctx: RegistryContext): Response {
  requireRepository(ctx, "push");
  const { id } = upload(ctx);
  ctx.state.uploads.delete(id);
  return emptyResponse(204, REGISTRY_HEADERS);
}

function manifestInvalid(message: string): RegistryError {
  return new RegistryError("MANIFEST_INVALID", "manifest invalid", 400, { detail: { message } });
}

interface Descriptor {
  digest: string;
  size: number;
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as { digest?: unknown; size?: unknown } | null;
  if (!d || typeof d !== "object" || typeof d.digest !== "string" || !DIGEST_REGEX.test(d.digest)) {
    throw manifestInvalid(`invalid ${where} descriptor`);
  }
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw manifestInvalid(`invalid size in ${where} descriptor`);
  }
  return { digest: d.digest, size: d.size };
}

/** Parses and checks a manifest against the repository's blobs and manifests. */
function checkManifest(
  repo: RepositoryRecord,
  bytes: Uint8Array,
  contentType: string,
): Omit<ManifestRecord, "digest"> {
  let doc: Record<string, unknown>;
  try {
    const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
    doc = parsed as Record<string, unknown>;
  } catch (error) {
    throw manifestInvalid(`could not parse manifest: ${(error as Error).message}`);
  }
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  const mediaType = IMAGE_TYPES.has(contentType) || INDEX_TYPES.has(contentType)
    ? contentType
    : declared ?? (Array.isArray(doc.manifests) ? "application/vnd.oci.image.index.v1+json" : contentType);
  if (declared && declared !== mediaType) throw manifestInvalid("mediaType does not match Content-Type");
  if (doc.schemaVersion !== 2) throw manifestInvalid("unsupported manifest schema version");
  if (IMAGE_TYPES.has(mediaType)) {
    const config = descriptor(doc.config, "config");
    if (!Array.isArray(doc.layers)) throw manifestInvalid("manifest has no layers array");
    const layers = doc.layers.map((l, i) => descriptor(l, `layer ${i}`));
    for (const d of [config, ...layers]) {
      const blob = repo.blobs.get(d.digest);
      if (!blob) throw manifestInvalid(`Missing referenced blob: ${d.digest}`);
      if (blob.byteLength !== d.size) throw manifestInvalid(`size mismatch for blob ${d.digest}`);
    }
    return { mediaType, bytes, isList: false, layersSize: layers.reduce((n, l) => n + l.size, 0) };
  }
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw manifestInvalid("index has no manifests array");
    for (const [i, m] of doc.manifests.entries()) {
      const d = descriptor(m, `manifest ${i}`);
      if (!repo.manifests.has(d.digest)) throw manifestInvalid(`Missing referenced manifest: ${d.digest}`);
    }
    return { mediaType, bytes, isList: true, layersSize: 0 };
  }
  throw manifestInvalid(`unsupported manifest media type: ${mediaType || "(none)"}`);
}

async function putManifest(ctx: RegistryContext): Promise<Response> {
  const { state } = ctx;
  const repo = requireRepository(ctx, "push");
  const reference = ctx.params.reference ?? "";
  const byDigest = reference.startsWith("sha256:");
  if (!byDigest && !TAG_REGEX.test(reference)) {
    throw new RegistryError("TAG_INVALID", "manifest tag did not match URI", 400);
  }
  const bytes = await readBody(ctx.req, MAX_MANIFEST);
  const contentType = (ctx.req.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
  const checked = checkManifest(repo, bytes, contentType);
  const digest = await sha256Digest(bytes);
  if (byDigest && digest !== reference) {
    throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400);
  }
  repo.manifests.set(digest, { digest, ...checked });
  if (!byDigest) {
    state.retargetTag(repo, reference, digest);
    spawnRepoPush(state, repo, reference, ctx.host);
  }
  return emptyResponse(201, {
    ...REGISTRY_HEADERS,
    location: `/v2/${ctx.params.name}/manifests/${digest}`,
    "docker-content-digest": digest,
    "content-length": "0",
  });
}

function getManifest(ctx: RegistryContext): Response {
  const repo = requireRepository(ctx, "pull");
  const reference = ctx.params.reference ?? "";
  const digest = reference.startsWith("sha256:")
    ? reference
    : ctx.state.liveTag(repo, reference)?.manifestDigest;
  const manifest = digest ? repo.manifests.get(digest) : undefined;
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", "manifest unknown", 404);
  return bytesResponse(manifest.bytes, {
    headers: {
      ...REGISTRY_HEADERS,
      "content-type": manifest.mediaType,
      "docker-content-digest": manifest.digest,
    },
    headOnly: ctx.req.method === "HEAD",
  });
}

function listTags(ctx: RegistryContext): Response {
  const repo = requireRepository(ctx, "pull");
  const names = [...new Set(repo.tags.filter((t) => t.endTs === null).map((t) => t.name))].sort();
  const last = ctx.url.searchParams.get("last");
  const nParam = ctx.url.searchParams.get("n");
  const n = nParam !== null && /^\d+$/.test(nParam) ? Number(nParam) : 100;
  const after = last ? names.filter((t) => t > last) : names;
  const page = after.slice(0, Math.max(0, n));
  const headers: Record<string, string> = { ...REGISTRY_HEADERS, "content-type": "application/json" };
  if (after.length > page.length && page.length > 0) {
    headers.link = `</v2/${ctx.params.name}/tags/list?n=${n}&last=${
      encodeURIComponent(page.at(-1) ?? "")
    }>; rel="next"`;
  }
  return bytesResponse(new TextEncoder().encode(JSON.stringify({ name: ctx.params.name, tags: page })), {
    headers,
  });
}

/** The registry routes. */
export function registryRoutes(): RouteDef<RegistryHandler>[] {
  const r = (method: string, template: string, handler: RegistryHandler): RouteDef<RegistryHandler> => ({
    method,
    template,
    handler,
  });
  return [
    r("GET", "/v2/", v2Root),
    r("GET", "/v2/auth", v2Auth),
    r("HEAD", "/v2/{name}/blobs/{digest}", getBlob),
    r("GET", "/v2/{name}/blobs/{digest}", getBlob),
    r("POST", "/v2/{name}/blobs/uploads/", startUpload),
    r("PATCH", "/v2/{name}/blobs/uploads/{uuid}", patchUpload),
    r("PUT", "/v2/{name}/blobs/uploads/{uuid}", finishUpload),
    r("GET", "/v2/{name}/blobs/uploads/{uuid}", uploadStatus),
    r("DELETE", "/v2/{name}/blobs/uploads/{uuid}", cancelUpload),
    r("PUT", "/v2/{name}/manifests/{reference}", putManifest),
    r("GET", "/v2/{name}/manifests/{reference}", getManifest),
    r("HEAD", "/v2/{name}/manifests/{reference}", getManifest),
    r("GET", "/v2/{name}/tags/list", listTags),
  ];
}
