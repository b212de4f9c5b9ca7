/**
 * @module
 * Loads the connection to the API server from kubeconfig files or the pod's service-account files.
 *
 * Only the parts of `@kubernetes/client-node` that do this are imported: its kubeconfig schema
 * (`config_types.js`: clusters, users and contexts with their `-data`/file fields) and its exec and
 * token-file authenticators. Its `KubeConfig` class imports the whole generated API client, which
 * costs about 60 MiB of resident memory before any work, although the operator makes its requests
 * with fetch (`client.ts`). The file handling around the schema (which file, which context, relative
 * paths, the in-cluster files) follows `KubeConfig` and is small enough to keep here. The YAML
 * parser (about 13 MiB resident) is loaded only when a kubeconfig file is read, never in a pod.
 */
import {
  type Cluster,
  type Context,
  newClusters,
  newContexts,
  newUsers,
  type User,
} from "@kubernetes/client-node/dist/config_types.js";
import { ExecAuth } from "@kubernetes/client-node/dist/exec_auth.js";
import { FileAuth } from "@kubernetes/client-node/dist/file_auth.js";
import { KubeApiError } from "../errors.ts";
import type { KubeConnection } from "./client.ts";

/** The environment variables of the kubeconfig convention, read by `src/config.ts`. */
export interface KubeEnvironment {
  /** `HOME`: `~/.kube/config` is the default file. */
  readonly home?: string | undefined;
  /** `KUBERNETES_SERVICE_HOST` and `_PORT`: the API server, in a pod. */
  readonly serviceHost?: string | undefined;
  readonly servicePort?: string | undefined;
}

/** Options of {@linkcode loadKubeConnection}. */
export interface KubeConnectionOptions {
  /** A kubeconfig file, or several joined by `:` (merged as `KUBECONFIG` is). */
  kubeconfig?: string | undefined;
  context?: string | undefined;
  environment?: KubeEnvironment | undefined;
  /** Where the service-account files are mounted, for tests. @default "" (the real path) */
  inClusterRoot?: string;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface Loaded {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | undefined;
}

function fail(message: string): never {
  throw new KubeApiError(message, { status: 0 });
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function absolute(dir: string, file: string | undefined): string | undefined {
  if (!file || file.startsWith("/")) return file;
  return `${dir}/${file}`;
}

function loadFile(path: string, parseYaml: (text: string) => unknown): Loaded {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    fail(`Cannot read the kubeconfig ${path}: ${error instanceof Error ? error.message : error}`);
  }
  let document: Record<string, unknown>;
  try {
    document = (parseYaml(text) ?? {}) as Record<string, unknown>;
  } catch (error) {
    fail(`The kubeconfig ${path} is not YAML: ${error instanceof Error ? error.message : error}`);
  }
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  // Relative file references are relative to the kubeconfig, as kubectl reads them.
  const clusters = newClusters(document.clusters).map((c) => ({ ...c, caFile: absolute(dir, c.caFile) }));
  const users = newUsers(document.users).map((u) => ({
    ...u,
    certFile: absolute(dir, u.certFile),
    keyFile: absolute(dir, u.keyFile),
  }));
  const current = document["current-context"];
  return {
    clusters,
    users,
    contexts: newContexts(document.contexts),
    currentContext: typeof current === "string" && current ? current : undefined,
  };
}

/** Several files merge as kubectl merges `KUBECONFIG`: the first to name something wins. */
function merge(files: Loaded[]): Loaded {
  const first = <T extends { name: string }>(lists: T[][]) => {
    const seen = new Map<string, T>();
    for (const item of lists.flat()) if (!seen.has(item.name)) seen.set(item.name, item);
    return [...seen.values()];
  };
  return {
    clusters: first(files.map((f) => f.clusters)),
    users: first(files.map((f) => f.users)),
    contexts: first(files.map((f) => f.contexts)),
    currentContext: files.find((f) => f.currentContext)?.currentContext,
  };
}

function inClusterConfig(root: string, environment: KubeEnvironment): Loaded {
  const host = environment.serviceHost;
  const port = environment.servicePort ?? "443";
  if (!host) fail("In a pod, but KUBERNETES_SERVICE_HOST is not set");
  let namespace: string | undefined;
  try {
    namespace = Deno.readTextFileSync(`${root}${SERVICE_ACCOUNT_DIR}/namespace`).trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    clusters: [{
      name: "in-cluster",
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      caFile: `${root}${SERVICE_ACCOUNT_DIR}/ca.crt`,
      skipTLSVerify: false,
    }],
    // Bound service-account tokens rotate: FileAuth re-reads the file every minute.
    users: [{
      name: "in-cluster",
      authProvider: { name: "tokenFile", config: { tokenFile: `${root}${SERVICE_ACCOUNT_DIR}/token` } },
    }],
    contexts: [{ name: "in-cluster", cluster: "in-cluster", user: "in-cluster", namespace }],
    currentContext: "in-cluster",
  };
}

function readPem(file: string | undefined, data: string | undefined, what: string): string | undefined {
  if (file) {
    try {
      return Deno.readTextFileSync(file);
    } catch (error) {
      fail(`Cannot read ${what} ${file}: ${error instanceof Error ? error.message : error}`);
    }
  }
  if (data) return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  return undefined;
}

type AuthOptions = { headers: Record<string, string>; cert?: unknown; key?: unknown };

/**
 * Loads a connection from a kubeconfig file, `~/.kube/config`, or the in-cluster service-account
 * files, in that order (the pod's files win over `~/.kube/config` when present). The caller passes
 * what it read from the environment (only `src/config.ts` reads it).
 */
export async function loadKubeConnection(options: KubeConnectionOptions): Promise<KubeConnection> {
  const environment = options.environment ?? {};
  const root = options.inClusterRoot ?? "";
  const homeConfig = environment.home ? `${environment.home}/.kube/config` : undefined;
  // A stat needs only the read permission the operator has anyway (client-node's fs.accessSync
  // needs --allow-sys=uid under Deno and failed silently without it).
  const inCluster = !options.kubeconfig && isFile(`${root}${SERVICE_ACCOUNT_DIR}/token`);
  let loaded: Loaded;
  if (options.kubeconfig) {
    const { parse } = await import("yaml");
    loaded = merge(options.kubeconfig.split(":").filter(Boolean).map((file) => loadFile(file, parse)));
  } else if (inCluster) {
    loaded = inClusterConfig(root, environment);
  } else if (homeConfig && isFile(homeConfig)) {
    const { parse } = await import("yaml");
    loaded = loadFile(homeConfig, parse);
  } else {
    fail("No Kubernetes configuration: give --kubeconfig or KUBECONFIG, or run in a pod");
  }
  const contextName = options.context ?? loaded.currentContext;
  const context = loaded.contexts.find((c) => c.name === contextName);
  if (!context) {
    fail(contextName ? `No context "${contextName}" in the Kubernetes configuration` : "No current context");
  }
  const cluster = loaded.clusters.find((c) => c.name === context.cluster);
  if (!cluster) fail("No cluster in the Kubernetes configuration");
  if (cluster.skipTLSVerify) {
    fail("insecure-skip-tls-verify is not supported for the Kubernetes API; give the cluster's CA instead");
  }
  const user: User = loaded.users.find((u) => u.name === context.user) ?? { name: context.user };
  const authenticator = [new ExecAuth(), new FileAuth()].find((a) => a.isAuthProvider(user));
  if (!authenticator && user.authProvider) {
    fail(
      `The auth-provider "${user.authProvider.name}" is not supported; use an exec credential plugin or a token`,
    );
  }
  const authenticate = async (): Promise<AuthOptions> => {
    const opts: AuthOptions = { headers: {} };
    if (authenticator) await authenticator.applyAuthentication(user, opts as never);
    if (user.token) opts.headers.Authorization = `Bearer ${user.token.trim()}`;
    else if (user.username && !opts.headers.Authorization) {
      opts.headers.Authorization = `Basic ${btoa(`${user.username}:${user.password ?? ""}`)}`;
    }
    return opts;
  };
  // An exec plugin may hand out a client certificate instead of a token.
  const first = await authenticate();
  const text = (v: unknown) =>
    v === undefined || v === null
      ? undefined
      : typeof v === "string"
      ? v
      : new TextDecoder().decode(v as Uint8Array);
  // The authenticators cache their results themselves (exec until the credential expires, token
  // files for a minute); this cache spares the header building on every request.
  let cached: { value: string | undefined; at: number } | undefined = {
    value: first.headers.Authorization,
    at: Date.now(),
  };
  async function authorization(): Promise<string | undefined> {
    if (cached && Date.now() - cached.at < 30_000) return cached.value;
    const value = (await authenticate()).headers.Authorization;
    cached = { value, at: Date.now() };
    return value;
  }
  return {
    server: cluster.server.replace(/\/+$/, ""),
    caPem: readPem(cluster.caFile, cluster.caData, "the cluster CA"),
    clientCertPem: readPem(user.certFile, user.certData, "the client certificate") ?? text(first.cert),
    clientKeyPem: readPem(user.keyFile, user.keyData, "the client key") ?? text(first.key),
    authorization,
    namespace: context.namespace,
    inCluster,
  };
}
