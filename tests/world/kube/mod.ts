/**
 * @module
 * The test world's Kubernetes/OpenShift API server: an in-process kube-apiserver over HTTPS on
 * 127.0.0.1 that the operator, the real `kubectl` and `@kubernetes/client-node` talk to as to a real
 * cluster. It serves discovery, the core, apps, coordination, RBAC, admissionregistration,
 * apiextensions and authorization APIs plus OpenShift's image, build and project types, custom
 * resources from CRDs (schema validation, defaulting, pruning, printer columns), the REST verbs
 * with merge, JSON, strategic merge patch and server-side apply, list/watch with selectors,
 * pagination, bookmarks and 410 Gone, finalizers and namespace termination, RBAC from stored
 * roles, and mutating admission webhooks over HTTPS.
 *
 * ```ts
 * const world = await startKubeWorld();
 * const kubeconfig = await world.writeKubeconfig(`${dir}/kubeconfig`);
 * // kubectl --kubeconfig $kubeconfig get namespaces
 * await world.close();
 * ```
 *
 * ## Hooks (for OpenShift behaviours)
 *
 * Behaviours beyond Kubernetes plug in through {@linkcode KubeWorld.hooks} without editing this folder:
 *
 * - **Virtual creates.** `world.hooks.onVirtualCreate({ group, resource, subresource? }, handler)`
 *   makes `POST` to `image.openshift.io` `imagestreamimports`, or to
 *   `build.openshift.io` `buildconfigs/{name}/instantiate`, call `handler` after authentication,
 *   RBAC (`create` on the resource or `resource/subresource`), the namespace check and mutating
 *   admission. The handler gets a {@linkcode VirtualCreateRequest} (decoded body, caller,
 *   namespace, name, dryRun, query) and returns the object to answer with (201), or throws a
 *   `KubeStatusError` (e.g. `conflict(...)` from `./status.ts`) to answer with that Status. Nothing
 *   is stored unless the handler writes.
 * - **Controllers over HTTP.** Everything else (service accounts of a new project, the
 *   `openshift.io/sa.scc.mcs` annotation, build phases, import results) is a controller that talks
 *   to `world.url` with `world.adminToken` and `world.caPem` like any client: list+watch, patch,
 *   `/status` updates. Handlers write the same way (a BuildConfig instantiation creates its Build with
 *   a POST, so admission webhooks see it as on a real cluster). The world needs no knowledge of them.
 */
import { createCertificateAuthority, issueServingCertificate } from "../../../src/certs/pki.ts";
import { Engine, json, MAX_BODY_BYTES } from "./engine.ts";
import { serveHttps } from "./server.ts";
import { tooLarge } from "./status.ts";
import type { KubeWorldHooks } from "./hooks.ts";
import type { UserInfo } from "./rbac.ts";
import type { KubeObject } from "./types.ts";

export type { KubeWorldHooks, VirtualCreateHandler, VirtualCreateRequest, VirtualTarget } from "./hooks.ts";
export type { UserInfo } from "./rbac.ts";
export type { KubeObject } from "./types.ts";
export {
  alreadyExists,
  badRequest,
  conflict,
  type FieldError,
  forbidden,
  internalError,
  invalid,
  KubeStatusError,
  notFound,
} from "./status.ts";

/** Options for {@linkcode startKubeWorld}. */
export interface KubeWorldOptions {
  /** Watch history kept before a resourceVersion is "compacted" (410). @default 10_000 events */
  watchHistory?: number;
  /** Maps a webhook clientConfig.service "namespace/name:port" to a local https base ("https://127.0.0.1:1234"). */
  serviceEndpoints?: Map<string, string>;
  /** Extra identities: token -> {user, groups}. */
  tokens?: Record<string, { user: string; groups?: string[] }>;
  /** How often watches that allow bookmarks get one. @default 5_000 ms */
  bookmarkIntervalMs?: number;
  /**
   * How a watch from a compacted resourceVersion is refused: `"event"` (HTTP 200 and an in-stream
   * `ERROR` event with a 410 Status, as kube-apiserver's watch cache does) or `"http"` (HTTP 410).
   * @default "event"
   */
  watchExpiredAs?: "event" | "http";
}

/** A running world. */
export interface KubeWorld {
  /** `https://127.0.0.1:<port>` */
  url: string;
  /** CA that signed the serving cert (SANs 127.0.0.1, localhost). */
  caPem: string;
  /** Identity "system:admin", groups ["system:masters","system:authenticated"]. */
  adminToken: string;
  /** Registers a bearer token for an identity, e.g. the operator's service account
   * ("system:serviceaccount:quay-bridge:quay-bridge-operator" gets the SA groups automatically). */
  addToken(token: string, identity: { user: string; groups?: string[] }): void;
  /** Writes a kubeconfig (server, CA data, token) and returns its path. */
  writeKubeconfig(path: string, options?: { token?: string; namespace?: string }): Promise<string>;
  serviceEndpoints: Map<string, string>;
  /** Extension points for OpenShift behaviour (see the module documentation). */
  hooks: KubeWorldHooks;
  /** Request counters by "VERB group/version/resource" for benchmarks and tests
   * (`LIST image.openshift.io/v1/imagestreams`, `GET v1/namespaces`, `GET /version`). */
  requestCounts(): Record<string, number>;
  /** Forgets all watch history up to now, so any older resourceVersion gets 410. */
  compact(): void;
  /** Changes how compacted watches are refused (see {@linkcode KubeWorldOptions.watchExpiredAs}). */
  setWatchExpiredAs(mode: "event" | "http"): void;
  /**
   * Stores objects directly (no HTTP, authentication or admission), filling uid, timestamps and
   * resourceVersion as a create would; for seeding large worlds quickly. Watches see ADDED events.
   */
  load(objects: Iterable<KubeObject>): void;
  /** The current resourceVersion. */
  resourceVersion(): string;
  /** Number of open watches (tests check that clients close theirs). */
  openWatches(): number;
  /** Leaves nothing running (watches ended, listener closed). */
  close(): Promise<void>;
}

/** Groups Kubernetes gives a service account's identity. */
function serviceAccountGroups(user: string): string[] {
  const m = /^system:serviceaccount:([^:]+):[^:]+$/.exec(user);
  return m ? ["system:serviceaccounts", `system:serviceaccounts:${m[1]}`] : [];
}

function identity(user: string, groups: string[] | undefined): UserInfo {
  const all = [...(groups ?? []), ...serviceAccountGroups(user)];
  if (!all.includes("system:authenticated")) all.push("system:authenticated");
  return { username: user, groups: [...new Set(all)] };
}

function randomToken(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

function kubeconfigYaml(url: string, caPem: string, token: string, namespace: string | undefined): string {
  const ca = new TextEncoder().encode(caPem.endsWith("\n") ? caPem : `${caPem}\n`).toBase64();
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: world",
    "  cluster:",
    `    server: ${url}`,
    `    certificate-authority-data: ${ca}`,
    "users:",
    "- name: world-user",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: world",
    "  context:",
    "    cluster: world",
    "    user: world-user",
    ...(namespace ? [`    namespace: ${namespace}`] : []),
    "current-context: world",
    "",
  ].join("\n");
}

/** Starts a world on a free loopback port. */
export async function startKubeWorld(options: KubeWorldOptions = {}): Promise<KubeWorld> {
  const ca = await createCertificateAuthority({ commonName: "quay-bridge-world-kube-ca" });
  const serving = await issueServingCertificate(ca, {
    commonName: "kube-apiserver",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
    ipAddresses: ["127.0.0.1"],
  });
  const serviceEndpoints = options.serviceEndpoints ?? new Map<string, string>();
  const engine = new Engine({
    watchHistory: options.watchHistory ?? 10_000,
    serviceEndpoints,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5_000,
    watchExpiredAs: options.watchExpiredAs ?? "event",
  });
  const adminToken = randomToken();
  engine.tokens.set(adminToken, identity("system:admin", ["system:masters", "system:authenticated"]));
  for (const [token, who] of Object.entries(options.tokens ?? {})) {
    engine.tokens.set(token, identity(who.user, who.groups));
  }

  const server = await serveHttps({
    cert: `${serving.certPem}\n${ca.certPem}\n`,
    key: serving.keyPem,
    maxBodyBytes: MAX_BODY_BYTES,
    tooLarge: () => json(413, tooLarge(MAX_BODY_BYTES).toStatus()),
    handler: (request) => engine.handle(request),
  });
  const url = `https://127.0.0.1:${server.port}`;
  engine.serverAddress = `127.0.0.1:${server.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    caPem: ca.certPem,
    adminToken,
    serviceEndpoints,
    hooks: engine.hooks,
    addToken(token, who) {
      engine.tokens.set(token, identity(who.user, who.groups));
    },
    async writeKubeconfig(path, kc = {}) {
      await Deno.writeTextFile(path, kubeconfigYaml(url, ca.certPem, kc.token ?? adminToken, kc.namespace), {
        mode: 0o600,
      });
      return path;
    },
    requestCounts: () => Object.fromEntries(engine.counts),
    compact: () => engine.store.compact(),
    setWatchExpiredAs(mode) {
      engine.options.watchExpiredAs = mode;
    },
    load(objects) {
      for (const object of objects) engine.load(object);
    },
    resourceVersion: () => String(engine.store.resourceVersion),
    openWatches: () => engine.watchCount,
    close() {
      closing ??= (async () => {
        engine.close();
        await server.close();
      })();
      return closing;
    },
  };
}
