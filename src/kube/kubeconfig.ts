/**
 * @module
 * Loads the connection to the API server from kubeconfig files or the pod's service-account files.
 *
 * The kubeconfig schema (clusters, users and contexts with their `-data`/file fields) is read as
 * `@kubernetes/client-node`'s `config_types.js` reads it, and the pod's token file is re-read every
 * minute as its `FileAuth` does, both by hand here: those modules import `node:fs`, and any `node:`
 * module brings Deno's Node compatibility layer into the process (about 10 MiB resident, most of the
 * operator's idle memory above a bare Deno). Its `ExecAuth` (exec credential plugins, which need
 * `node:child_process`) is loaded only for a user that names a plugin. Its `KubeConfig` class imports
 * the whole generated API client (about 60 MiB) and is never used: the operator makes its requests
 * with fetch (`client.ts`). The YAML parser (js-yaml's ES module build, about 3 MiB resident) is
 * loaded only when a kubeconfig file is read, never in a pod.
 */
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

/** A kubeconfig cluster, named as client-node names it. */
interface Cluster {
  readonly name: string;
  readonly server: string;
  readonly caData?: string | undefined;
  readonly caFile?: string | undefined;
  readonly skipTLSVerify: boolean;
}

/** A kubeconfig user, named as client-node names it (its `ExecAuth` reads `exec` and `authProvider`). */
interface User {
  readonly name: string;
  readonly authProvider?: { name?: string; config?: Record<string, unknown> } | undefined;
  readonly exec?: unknown;
  readonly certData?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyData?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly token?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** A kubeconfig context. */
interface Context {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string | undefined;
  readonly namespace?: string | undefined;
}

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

type Entry = Record<string, unknown>;

/** The entries of a kubeconfig list (`clusters`, `users`, `contexts`); each must have a name. */
function entries(list: unknown, what: string, field: string | undefined): Entry[] {
  if (!Array.isArray(list)) return [];
  return list.map((item, i) => {
    const entry = (item ?? {}) as Entry;
    if (!entry.name) fail(`${what}[${i}].name is missing`);
    if (field !== undefined && (typeof entry[field] !== "object" || entry[field] === null)) {
      fail(`${what}[${i}].${field} is missing`);
    }
    return entry;
  });
}

const str = (value: unknown): string | undefined => typeof value === "string" && value ? value : undefined;

function clustersOf(list: unknown): Cluster[] {
  return entries(list, "clusters", "cluster").map((entry, i) => {
    const c = entry.cluster as Entry;
    if (!c.server || typeof c.server !== "string") fail(`clusters[${i}].cluster.server is missing`);
    return {
      name: String(entry.name),
      server: c.server.replace(/\/$/, ""),
      caData: str(c["certificate-authority-data"]),
      caFile: str(c["certificate-authority"]),
      skipTLSVerify: c["insecure-skip-tls-verify"] === true,
    };
  });
}

function usersOf(list: unknown): User[] {
  return entries(list, "users", undefined).map((entry) => {
    const u = (typeof entry.user === "object" && entry.user !== null ? entry.user : {}) as Entry;
    let token = str(u.token);
    const tokenFile = str(u["token-file"]);
    if (!token && tokenFile) {
      try {
        token = Deno.readTextFileSync(tokenFile);
      } catch (error) {
        fail(`Cannot read the token file ${tokenFile}: ${error instanceof Error ? error.message : error}`);
      }
    }
    const provider = u["auth-provider"];
    return {
      name: String(entry.name),
      authProvider: typeof provider === "object" && provider !== null
        ? provider as User["authProvider"]
        : undefined,
      exec: u.exec ?? undefined,
      certData: str(u["client-certificate-data"]),
      certFile: str(u["client-certificate"]),
      keyData: str(u["client-key-data"]),
      keyFile: str(u["client-key"]),
      token,
      username: str(u.username),
      password: str(u.password),
    };
  });
}

function contextsOf(list: unknown): Context[] {
  return entries(list, "contexts", "context").map((entry, i) => {
    const c = entry.context as Entry;
    if (!c.cluster || typeof c.cluster !== "string") fail(`contexts[${i}].context.cluster is missing`);
    return { name: String(entry.name), cluster: c.cluster, user: str(c.user), namespace: str(c.namespace) };
  });
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
  const clusters = clustersOf(document.clusters).map((c) => ({ ...c, caFile: absolute(dir, c.caFile) }));
  const users = usersOf(document.users).map((u) => ({
    ...u,
    certFile: absolute(dir, u.certFile),
    keyFile: absolute(dir, u.keyFile),
  }));
  const current = document["current-context"];
  return {
    clusters,
    users,
    contexts: contextsOf(document.contexts),
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
    // Bound service-account tokens rotate: the token file is re-read every minute.
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

/**
 * js-yaml's `load`, the parser client-node reads kubeconfigs with. Its package resolves to an ES
 * module; the `yaml` package the rest of the repository uses resolves to CommonJS under Deno, whose
 * loader alone brings the Node compatibility layer in.
 */
async function yamlParser(): Promise<(text: string) => unknown> {
  const { load } = await import("js-yaml");
  return (text) => load(text);
}

type AuthOptions = { headers: Record<string, string>; cert?: unknown; key?: unknown };

/** What client-node's authenticators offer: headers (and client certificates) for a user. */
interface Authenticator {
  applyAuthentication(user: User, opts: AuthOptions): Promise<void>;
}

/** A token file (`auth-provider.config.tokenFile`), re-read when a minute old, as client-go does. */
class TokenFileAuth implements Authenticator {
  readonly #path: string;
  #token: string | undefined;
  #readAt = -Infinity;

  constructor(path: string) {
    this.#path = path;
  }

  applyAuthentication(_user: User, opts: AuthOptions): Promise<void> {
    if (this.#token === undefined || Date.now() - this.#readAt > 60_000) {
      this.#token = Deno.readTextFileSync(this.#path);
      this.#readAt = Date.now();
    }
    if (this.#token) opts.headers.Authorization = `Bearer ${this.#token}`;
    return Promise.resolve();
  }
}

/**
 * The authenticator a user names, as client-node chooses it: an exec credential plugin (client-node's
 * `ExecAuth`, loaded only then), else a token file; undefined for a plain token, certificate or
 * password.
 */
async function authenticatorFor(user: User): Promise<Authenticator | undefined> {
  const provider = user.authProvider;
  if (user.exec || provider?.name === "exec" || provider?.config?.exec) {
    const { ExecAuth } = await import("@kubernetes/client-node/dist/exec_auth.js");
    const exec = new ExecAuth();
    return { applyAuthentication: (u, opts) => exec.applyAuthentication(u as never, opts as never) };
  }
  const tokenFile = provider?.config?.tokenFile;
  return typeof tokenFile === "string" && tokenFile ? new TokenFileAuth(tokenFile) : undefined;
}

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
    const parse = await yamlParser();
    loaded = merge(options.kubeconfig.split(":").filter(Boolean).map((file) => loadFile(file, parse)));
  } else if (inCluster) {
    loaded = inClusterConfig(root, environment);
  } else if (homeConfig && isFile(homeConfig)) {
    loaded = loadFile(homeConfig, await yamlParser());
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
  const user: User = loaded.users.find((u) => u.name === context.user) ?? { name: context.user ?? "" };
  const authenticator = await authenticatorFor(user);
  if (!authenticator && user.authProvider) {
    fail(
      `The auth-provider "${user.authProvider.name}" is not supported; use an exec credential plugin or a token`,
    );
  }
  const authenticate = async (): Promise<AuthOptions> => {
    const opts: AuthOptions = { headers: {} };
    if (authenticator) await authenticator.applyAuthentication(user, opts);
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
