/**
 * @module
 * A small Docker Registry v2 client that does what `podman push`/`pull` do over HTTP: `GET /v2/`,
 * follow the `WWW-Authenticate` challenge to the token realm with Basic credentials, then push or
 * pull with the bearer token. {@linkcode pushImage} pushes a small generated image (an OCI config
 * and one gzipped tar layer holding one file), distinct per repository and tag unless told
 * otherwise. Works against any v2 registry with token auth, not only the test world's.
 */

/** A registry answered with an error. */
export class RegistryClientError extends Error {
  /** HTTP status (0 when the registry could not be reached). */
  readonly status: number;
  /** Registry error codes from the body (`UNAUTHORIZED`, `MANIFEST_INVALID`, …). */
  readonly codes: readonly string[];

  constructor(message: string, options: { status: number; codes?: readonly string[]; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "RegistryClientError";
    this.status = options.status;
    this.codes = options.codes ?? [];
  }
}

/** Where and as whom to talk to a registry. */
export interface RegistryTarget {
  /** `https://host[:port]`. */
  registryUrl: string;
  /** PEM CA to trust besides the system store. */
  caPem?: string;
  /** `namespace/repository`. */
  repository: string;
  /** Basic credentials for the token realm (robot `org+name` and its token, or `$oauthtoken`). */
  username?: string;
  password?: string;
  /** A client to use (not closed); otherwise one is made from `caPem` and closed after. */
  client?: Deno.HttpClient;
  signal?: AbortSignal;
}

/** Options of {@linkcode pushImage}. */
export interface PushImageOptions extends RegistryTarget {
  tag: string;
  /** Manifest format. @default "oci" */
  format?: "oci" | "docker";
  /** Content of the single file in the layer. @default text naming the repository, tag and time */
  content?: string;
  /** Labels in the image config. */
  labels?: Record<string, string>;
  /** Creation time in the config; fix it to get the same digest for the same content. @default now */
  created?: Date;
}

/** What {@linkcode pushImage} pushed. */
export interface PushedImage {
  /** Manifest digest (`sha256:…`), as the registry's `Docker-Content-Digest` reported it. */
  digest: string;
  configDigest: string;
  layerDigest: string;
  /** Manifest media type. */
  mediaType: string;
  /** Size of the layer blob. */
  layerSize: number;
}

/** Options of {@linkcode pullManifest}. */
export interface PullManifestOptions extends RegistryTarget {
  /** Tag or `sha256:` digest. */
  reference: string;
  /** Also fetch and parse the image config blob. @default true */
  includeConfig?: boolean;
}

/** A pulled manifest. */
export interface PulledManifest {
  digest: string;
  mediaType: string;
  manifest: Record<string, unknown>;
  /** The image config (absent for indexes or when not asked for). */
  config?: Record<string, unknown>;
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT_MANIFESTS = [
  OCI_MANIFEST,
  DOCKER_MANIFEST,
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

const encoder = new TextEncoder();

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

function tarFile(name: string, content: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const put = (text: string, offset: number, length: number) =>
    header.set(encoder.encode(text).slice(0, length), offset);
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, "0") + "\0";
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(content.byteLength, 12), 124, 12);
  put(octal(0, 12), 136, 12);
  header.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  header[156] = 0x30; // regular file
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  const sum = header.reduce((n, b) => n + b, 0);
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  const padded = Math.ceil(content.byteLength / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  out.set(header, 0);
  out.set(content, 512);
  return out;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Session {
  client: Deno.HttpClient;
  ownsClient: boolean;
  base: string;
  token: string | undefined;
  target: RegistryTarget;
}

function open(target: RegistryTarget): Session {
  const ownsClient = target.client === undefined;
  const client = target.client ?? Deno.createHttpClient({ caCerts: target.caPem ? [target.caPem] : [] });
  return { client, ownsClient, base: target.registryUrl.replace(/\/+$/, ""), token: undefined, target };
}

async function errorFrom(response: Response, what: string): Promise<RegistryClientError> {
  const text = await response.text().catch(() => "");
  let codes: string[] = [];
  let detail = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    codes = (body.errors ?? []).map((e) => e.code ?? "").filter((c) => c !== "");
    detail = (body.errors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ") || detail;
  } catch {
    // Not a registry error body (a proxy page); keep the text.
  }
  return new RegistryClientError(`${what} failed with ${response.status}: ${detail}`, {
    status: response.status,
    codes,
  });
}

async function send(session: Session, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (session.token) headers.set("authorization", `Bearer ${session.token}`);
  const url = /^https?:\/\//.test(path) ? path : session.base + path;
  try {
    return await fetch(url, { ...init, headers, client: session.client, signal: session.target.signal });
  } catch (error) {
    throw new RegistryClientError(`Cannot reach the registry at ${url}: ${(error as Error).message}`, {
      status: 0,
      cause: error,
    });
  }
}

function parseChallenge(header: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const m of header.replace(/^\s*bearer\s+/i, "").matchAll(/(\w+)="([^"]*)"/g)) {
    if (m[1] && m[2] !== undefined) params[m[1]] = m[2];
  }
  return params;
}

/** The token dance: `/v2/` challenge, then the realm with Basic credentials for the actions. */
async function authenticate(session: Session, actions: string): Promise<void> {
  const probe = await send(session, "/v2/");
  await probe.body?.cancel();
  if (probe.status === 200) return;
  const challenge = probe.headers.get("www-authenticate") ?? "";
  if (probe.status !== 401 || !/^\s*bearer/i.test(challenge)) {
    throw new RegistryClientError(`GET /v2/ answered ${probe.status} without a bearer challenge`, {
      status: probe.status,
    });
  }
  const { realm, service } = parseChallenge(challenge);
  if (!realm) throw new RegistryClientError("The bearer challenge names no realm", { status: 401 });
  const url = new URL(realm);
  if (service) url.searchParams.set("service", service);
  url.searchParams.set("scope", `repository:${session.target.repository}:${actions}`);
  const headers = new Headers();
  const { username, password } = session.target;
  if (username !== undefined) {
    const raw = encoder.encode(`${username}:${password ?? ""}`);
    headers.set("authorization", `Basic ${btoa(String.fromCharCode(...raw))}`);
  }
  const response = await fetch(url, { headers, client: session.client, signal: session.target.signal }).catch(
    (error) => {
      throw new RegistryClientError(
        `Cannot reach the token realm ${url.origin}: ${(error as Error).message}`,
        {
          status: 0,
          cause: error,
        },
      );
    },
  );
  if (!response.ok) throw await errorFrom(response, "Token request");
  const body = await response.json() as { token?: string; access_token?: string };
  session.token = body.token ?? body.access_token;
  if (!session.token) throw new RegistryClientError("The token realm returned no token", { status: 200 });
}

async function uploadBlob(session: Session, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes);
  const name = session.target.repository;
  const head = await send(session, `/v2/${name}/blobs/${digest}`, { method: "HEAD" });
  await head.body?.cancel();
  if (head.status === 200) return digest;
  const start = await send(session, `/v2/${name}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw await errorFrom(start, `Starting a blob upload to ${name}`);
  await start.body?.cancel();
  const location = start.headers.get("location");
  if (!location) throw new RegistryClientError("The upload answer has no Location", { status: 202 });
  const url = new URL(location, session.base + "/");
  url.searchParams.set("digest", digest);
  const put = await send(session, url.toString(), {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  if (put.status !== 201) throw await errorFrom(put, `Uploading blob ${digest} to ${name}`);
  await put.body?.cancel();
  return digest;
}

/**
 * Pushes a small generated image to `repository:tag` with the credentials given, doing the token
 * dance over HTTP. Throws {@linkcode RegistryClientError} with the registry's status and codes.
 */
export async function pushImage(options: PushImageOptions): Promise<PushedImage> {
  const session = open(options);
  try {
    await authenticate(session, "pull,push");
    const content = options.content ??
      `${options.repository}:${options.tag} pushed at ${new Date().toISOString()}\n`;
    // gzip output is deterministic for the same input, so fixed content and time give a fixed digest.
    const tar = tarFile("hello.txt", encoder.encode(content));
    const layer = await gzip(tar);
    const diffId = await sha256(tar);
    const docker = options.format === "docker";
    const created = (options.created ?? new Date()).toISOString();
    const config = encoder.encode(JSON.stringify({
      created,
      architecture: "amd64",
      os: "linux",
      config: {
        Cmd: ["/bin/sh"],
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Labels: options.labels ?? {},
      },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, created_by: "quay-world pushImage" }],
    }));
    const configDigest = await uploadBlob(session, config);
    const layerDigest = await uploadBlob(session, layer);
    const mediaType = docker ? DOCKER_MANIFEST : OCI_MANIFEST;
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: docker
          ? "application/vnd.docker.container.image.v1+json"
          : "application/vnd.oci.image.config.v1+json",
        digest: configDigest,
        size: config.byteLength,
      },
      layers: [{
        mediaType: docker
          ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
          : "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: layerDigest,
        size: layer.byteLength,
      }],
    }));
    const put = await send(
      session,
      `/v2/${options.repository}/manifests/${encodeURIComponent(options.tag)}`,
      {
        method: "PUT",
        headers: { "content-type": mediaType },
        body: manifest,
      },
    );
    if (put.status !== 201) {
      throw await errorFrom(put, `Pushing manifest ${options.repository}:${options.tag}`);
    }
    await put.body?.cancel();
    const digest = put.headers.get("docker-content-digest") ?? await sha256(manifest);
    return { digest, configDigest, layerDigest, mediaType, layerSize: layer.byteLength };
  } finally {
    if (session.ownsClient) session.client.close();
  }
}

/**
 * Pulls a manifest (and by default its image config) by tag or digest, doing the token dance over
 * HTTP, and checks the manifest's digest. Throws {@linkcode RegistryClientError} on any refusal.
 */
export async function pullManifest(options: PullManifestOptions): Promise<PulledManifest> {
  const session = open(options);
  try {
    await authenticate(session, "pull");
    const name = options.repository;
    const response = await send(session, `/v2/${name}/manifests/${encodeURIComponent(options.reference)}`, {
      headers: { accept: ACCEPT_MANIFESTS },
    });
    if (response.status !== 200) {
      throw await errorFrom(response, `Pulling manifest ${name}:${options.reference}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const digest = await sha256(bytes);
    const reported = response.headers.get("docker-content-digest");
    if (reported && reported !== digest) {
      throw new RegistryClientError(`Manifest digest ${digest} does not match the reported ${reported}`, {
        status: 200,
      });
    }
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const mediaType =
      (response.headers.get("content-type") ?? String(manifest.mediaType ?? "")).split(";")[0] ?? "";
    const result: PulledManifest = { digest, mediaType, manifest };
    const configRef = (manifest.config as { digest?: string } | undefined)?.digest;
    if ((options.includeConfig ?? true) && configRef) {
      const blob = await send(session, `/v2/${name}/blobs/${configRef}`);
      if (blob.status !== 200) throw await errorFrom(blob, `Pulling config ${configRef} of ${name}`);
      result.config = await blob.json() as Record<string, unknown>;
    }
    return result;
  } finally {
    if (session.ownsClient) session.client.close();
  }
}
