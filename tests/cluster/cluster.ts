/**
 * @module
 * Starts a real Kubernetes control plane for the end-to-end suite: the cached kube-apiserver (with
 * embedded etcd) and, by default, a kube-controller-manager running the controllers a project's
 * life depends on (namespace termination, default service accounts, garbage collection). Both bind
 * 127.0.0.1 only, live in a temp dir and stop with {@linkcode RealCluster.close}.
 */
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { createCertificateAuthority, issueServingCertificate } from "../../src/certs/pki.ts";
import { ensureKubeApiserverBinary } from "./binary.ts";

/** The operator's service-account identity, as a static token grants it. */
export const OPERATOR_USER = "system:serviceaccount:quay-bridge:quay-bridge-operator";
/** The groups Kubernetes gives that service account. */
export const OPERATOR_GROUPS = [
  "system:serviceaccounts",
  "system:serviceaccounts:quay-bridge",
  "system:authenticated",
] as const;
/** The controllers kube-controller-manager runs unless told otherwise. */
export const DEFAULT_CONTROLLERS = [
  "namespace",
  "serviceaccount",
  "garbagecollector",
  "root-ca-cert-publisher",
] as const;

/** An extra identity with a static bearer token. */
export interface ClusterUser {
  readonly name: string;
  readonly groups?: readonly string[];
}

/** Options for {@linkcode startRealCluster}. */
export interface StartRealClusterOptions {
  /** kube-controller-manager controllers to run; `false` runs none (namespaces then never finish
   * terminating). @default DEFAULT_CONTROLLERS */
  controllers?: readonly string[] | false;
  /** Install the OpenShift image and build CRDs from `crds/`. @default true */
  openshiftCrds?: boolean;
  /** More static-token identities, e.g. a developer; their tokens are in {@linkcode RealCluster.tokens}. */
  users?: readonly ClusterUser[];
  /** Extra kube-apiserver flags (later flags win), e.g. `--etcd-compaction-interval=10s`. */
  apiserverArgs?: readonly string[];
  /** Give up starting after this long (not counting the first build). @default 120_000 */
  startTimeoutMs?: number;
  /** Leave the temp dir (logs, certs, etcd data) behind after close, for debugging. @default false */
  keepDir?: boolean;
}

/** The outcome of one kubectl run. */
export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for {@linkcode RealCluster.kubectl}. */
export interface KubectlOptions {
  /** Bearer token to act with. @default the admin token */
  token?: string;
  /** Text fed to kubectl's stdin (for `-f -`). */
  stdin?: string;
}

/** A running control plane. */
export interface RealCluster extends AsyncDisposable {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** PEM of the CA that signed the apiserver's serving certificate. */
  readonly caPem: string;
  /** Token of `e2e-admin` in `system:masters`. */
  readonly adminToken: string;
  /** Token of {@linkcode OPERATOR_USER}: it can do nothing until RBAC grants it. */
  readonly operatorToken: string;
  /** Token by user name, for the admin, the operator and every {@linkcode StartRealClusterOptions.users}. */
  readonly tokens: Readonly<Record<string, string>>;
  /** The temp dir holding certs, logs and etcd data. */
  readonly dir: string;
  /** A kubeconfig file for the admin, inside {@linkcode dir}. */
  readonly adminKubeconfig: string;
  /** Writes a kubeconfig that reaches this cluster with `token`. */
  writeKubeconfig(path: string, options: { token: string; namespace?: string }): Promise<void>;
  /** `fetch` against the apiserver, trusting its CA, as the admin unless `token` says otherwise.
   * The caller must consume or cancel the body. */
  request(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  /** Runs the real kubectl against this cluster. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** The log of one component so far. */
  logs(component?: Component): Promise<string>;
  /** Stops both processes and removes the temp dir. Safe to call twice. */
  close(): Promise<void>;
}

/** A process of the control plane. */
export type Component = "kube-apiserver" | "kube-controller-manager";

/** Raised when the control plane does not come up; the message carries the log's tail. */
export class ClusterStartError extends Error {
  override name = "ClusterStartError";
}

const ADMIN_USER = "e2e-admin";
const CRD_DIR = new URL("./crds/", import.meta.url);
const POLL_MS = 50;

/**
 * Starts a control plane on a free loopback port and resolves once `/readyz` is ok, the OpenShift
 * CRDs are Established, in discovery and watchable, and (with controllers) the `default` service
 * account of the `default` namespace exists. Builds the binary first if needed (minutes, once).
 */
export async function startRealCluster(options: StartRealClusterOptions = {}): Promise<RealCluster> {
  const binary = await ensureKubeApiserverBinary();
  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-kube-" });
  const processes: Running[] = [];
  let client: Deno.HttpClient | undefined;
  try {
    const files = await writeFiles(dir, options.users ?? []);
    client = Deno.createHttpClient({ caCerts: [files.caPem] });
    const apiserver = await startApiserver({ binary, dir, files, client, deadline, options });
    processes.push(apiserver.process);
    const url = apiserver.url;
    const http = client;
    const adminToken = files.tokens[ADMIN_USER] as string;
    const request = (path: string, init: RequestInit & { token?: string } = {}) => {
      const { token, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set("Authorization", `Bearer ${token ?? adminToken}`);
      return fetch(url + path, { ...rest, headers, client: http });
    };
    const writeKubeconfig = (path: string, kc: { token: string; namespace?: string }) =>
      Deno.writeTextFile(path, kubeconfig(url, files.caPem, kc));
    const adminKubeconfig = `${dir}/admin.kubeconfig`;
    await writeKubeconfig(adminKubeconfig, { token: adminToken });

    const ready: Promise<unknown>[] = [];
    const controllers = options.controllers ?? DEFAULT_CONTROLLERS;
    if (controllers !== false && controllers.length > 0) {
      const manager = spawn(binary, "kube-controller-manager", dir, [
        "kube-controller-manager",
        "--exit-with-parent",
        `--kubeconfig=${adminKubeconfig}`,
        `--controllers=${controllers.join(",")}`,
        "--leader-elect=false",
        "--secure-port=0",
        "--use-service-account-credentials=false",
        `--root-ca-file=${files.caFile}`,
        `--service-account-private-key-file=${files.serviceAccountKeyFile}`,
      ]);
      processes.push(manager);
      if (controllers.includes("serviceaccount")) {
        ready.push(waitFor("the default service account", deadline, [manager], async () => {
          const response = await request("/api/v1/namespaces/default/serviceaccounts/default");
          await response.body?.cancel();
          return response.ok;
        }));
      }
    }
    if (options.openshiftCrds ?? true) ready.push(installCrds(request, deadline, processes));
    // allSettled: a failed wait must not leave the other one polling after the cleanup below.
    const failed = (await Promise.allSettled(ready)).find((r) => r.status === "rejected");
    if (failed) throw failed.reason;

    let closed: Promise<void> | undefined;
    const close = () =>
      closed ??= (async () => {
        await Promise.all(processes.map((p) => p.stop()));
        http.close();
        if (!options.keepDir) await Deno.remove(dir, { recursive: true });
      })();
    return {
      url,
      caPem: files.caPem,
      adminToken,
      operatorToken: files.tokens[OPERATOR_USER] as string,
      tokens: files.tokens,
      dir,
      adminKubeconfig,
      writeKubeconfig,
      request,
      kubectl: (args, kc = {}) => kubectl({ url, caPem: files.caPem, dir, adminKubeconfig, args, ...kc }),
      logs: (component = "kube-apiserver") => Deno.readTextFile(`${dir}/${component}.log`),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await Promise.all(processes.map((p) => p.stop()));
    client?.close();
    if (!options.keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

interface Files {
  caPem: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  serviceAccountKeyFile: string;
  serviceAccountPublicKeyFile: string;
  tokenFile: string;
  tokens: Record<string, string>;
}

async function writeFiles(dir: string, users: readonly ClusterUser[]): Promise<Files> {
  const ca = await createCertificateAuthority({ commonName: "quay-bridge-e2e-ca" });
  const serving = await issueServingCertificate(ca, {
    commonName: "kube-apiserver",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
    ipAddresses: ["127.0.0.1"],
  });
  const identities: ClusterUser[] = [
    { name: ADMIN_USER, groups: ["system:masters", "system:authenticated"] },
    { name: OPERATOR_USER, groups: OPERATOR_GROUPS },
    ...users,
  ];
  const tokens: Record<string, string> = {};
  const lines = identities.map((user, index) => {
    const token = randomToken();
    tokens[user.name] = token;
    // token,user,uid,"group1,group2" as --token-auth-file expects.
    return `${token},${user.name},uid-${index},"${(user.groups ?? []).join(",")}"`;
  });
  const files: Files = {
    caPem: ca.certPem,
    caFile: `${dir}/ca.crt`,
    certFile: `${dir}/apiserver.crt`,
    keyFile: `${dir}/apiserver.key`,
    serviceAccountKeyFile: `${dir}/service-account.key`,
    serviceAccountPublicKeyFile: `${dir}/service-account.pub`,
    tokenFile: `${dir}/tokens.csv`,
    tokens,
  };
  const serviceAccount = await serviceAccountKeys();
  await Promise.all([
    // pki.ts PEMs end without a newline; Go's PEM decoder needs one between concatenated blocks.
    Deno.writeTextFile(files.caFile, `${ca.certPem}\n`),
    Deno.writeTextFile(files.certFile, `${serving.certPem}\n${ca.certPem}\n`),
    Deno.writeTextFile(files.keyFile, `${serving.keyPem}\n`, { mode: 0o600 }),
    Deno.writeTextFile(files.serviceAccountKeyFile, serviceAccount.privatePem, { mode: 0o600 }),
    Deno.writeTextFile(files.serviceAccountPublicKeyFile, serviceAccount.publicPem),
    Deno.writeTextFile(files.tokenFile, lines.join("\n") + "\n", { mode: 0o600 }),
  ]);
  return files;
}

function randomToken(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** An ECDSA key pair for signing service-account tokens (kube-apiserver wants the public half in
 * its own file: it does not derive it from a PKCS#8 private key). */
async function serviceAccountKeys(): Promise<{ privatePem: string; publicPem: string }> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
  const pem = (label: string, der: ArrayBuffer) => {
    const base64 = btoa(String.fromCharCode(...new Uint8Array(der))).replace(/.{64}/g, "$&\n").trim();
    return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
  };
  return {
    privatePem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
    publicPem: pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", keys.publicKey)),
  };
}

interface Running {
  readonly child: Deno.ChildProcess;
  readonly component: Component;
  readonly logFile: string;
  readonly exited: Promise<Deno.CommandStatus>;
  stop(): Promise<void>;
}

function childEnv(): Record<string, string> {
  // Loopback is never proxied by Go, but a proxy variable must not be able to reroute etcd or the
  // webhook calls on a machine where that assumption fails.
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)),
  );
}

function spawn(binary: string, component: Component, dir: string, args: string[]): Running {
  const logFile = `${dir}/${component}.log`;
  const child = new Deno.Command(binary, {
    args,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pumped = (async () => {
    const file = await Deno.open(logFile, { create: true, append: true });
    try {
      await Promise.all([child.stdout, child.stderr].map(async (stream) => {
        for await (const chunk of stream) await file.write(chunk);
      }));
    } finally {
      file.close();
    }
  })();
  const exited = child.status;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      // A graceful apiserver shutdown drains in well under a second; a stuck one is killed.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // exited meanwhile
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
      await pumped;
    })();
  return { child, component, logFile, exited, stop };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface ApiserverStart {
  binary: string;
  dir: string;
  files: Files;
  client: Deno.HttpClient;
  deadline: number;
  options: StartRealClusterOptions;
}

async function startApiserver(start: ApiserverStart): Promise<{ url: string; process: Running }> {
  const { binary, dir, files, client, deadline, options } = start;
  // The port is free when asked for but not reserved; on the rare collision, try another.
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const url = `https://127.0.0.1:${port}`;
    const process = spawn(binary, "kube-apiserver", dir, [
      "kube-apiserver",
      "--exit-with-parent",
      `--embedded-etcd-dir=${dir}/etcd-${attempt}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${port}`,
      `--tls-cert-file=${files.certFile}`,
      `--tls-private-key-file=${files.keyFile}`,
      `--client-ca-file=${files.caFile}`,
      `--token-auth-file=${files.tokenFile}`,
      "--authorization-mode=RBAC",
      "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,LimitRanger,ResourceQuota," +
      "MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook",
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${files.serviceAccountPublicKeyFile}`,
      `--service-account-signing-key-file=${files.serviceAccountKeyFile}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      "--allow-privileged=true",
      "--profiling=false",
      ...(options.apiserverArgs ?? []),
    ]);
    try {
      await waitFor("kube-apiserver /readyz", deadline, [process], async () => {
        const response = await fetch(`${url}/readyz`, { client });
        await response.body?.cancel();
        return response.ok;
      });
      return { url, process };
    } catch (error) {
      await process.stop();
      const log = await Deno.readTextFile(process.logFile).catch(() => "");
      if (attempt < 3 && /address already in use/.test(log)) continue;
      throw error;
    }
  }
}

/** Polls `check` until it returns true; fails early with the log's tail if a process dies. */
async function waitFor(
  what: string,
  deadline: number,
  watched: readonly Running[],
  check: () => Promise<boolean>,
): Promise<void> {
  let exitedEarly: Running | undefined;
  for (const process of watched) process.exited.then(() => (exitedEarly ??= process));
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exitedEarly) {
      throw new ClusterStartError(
        `${exitedEarly.component} exited while waiting for ${what}:\n` +
          await logTail(exitedEarly),
      );
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error; // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const tails = await Promise.all(watched.map(logTail));
  throw new ClusterStartError(`timed out waiting for ${what}:\n${tails.join("\n")}`, { cause: lastError });
}

async function logTail(process: Running): Promise<string> {
  const log = await Deno.readTextFile(process.logFile).catch(() => "");
  return `--- last lines of ${process.logFile}\n` + log.trimEnd().split("\n").slice(-30).join("\n");
}

type Request = (path: string, init?: RequestInit & { token?: string }) => Promise<Response>;

interface Crd {
  metadata: { name: string };
  spec: { group: string; names: { plural: string }; versions: { name: string }[] };
}

async function installCrds(request: Request, deadline: number, processes: readonly Running[]): Promise<void> {
  const crds: Crd[] = [];
  for await (const entry of Deno.readDir(CRD_DIR)) {
    if (entry.isFile && entry.name.endsWith(".yaml")) {
      crds.push(parseYaml(await Deno.readTextFile(new URL(entry.name, CRD_DIR))) as Crd);
    }
  }
  await Promise.all(crds.map(async (crd) => {
    const created = await request("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(crd),
    });
    if (!created.ok) {
      throw new ClusterStartError(
        `creating CRD ${crd.metadata.name}: ${created.status} ${await created.text()}`,
      );
    }
    await created.body?.cancel();
    await waitFor(`CRD ${crd.metadata.name} Established`, deadline, processes, async () => {
      const response = await request(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
      );
      const body = await response.json() as { status?: { conditions?: { type: string; status: string }[] } };
      return body.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
    });
  }));
  // Established means served; kubectl and client-node also need the group in discovery.
  for (const crd of crds) {
    const version = crd.spec.versions[0]?.name ?? "v1";
    await waitFor(`${crd.spec.group}/${version} in discovery`, deadline, processes, async () => {
      const response = await request(`/apis/${crd.spec.group}/${version}`);
      if (!response.ok) {
        await response.body?.cancel();
        return false;
      }
      const list = await response.json() as { resources?: { name: string }[] };
      return list.resources?.some((r) => r.name === crd.spec.names.plural) ?? false;
    });
    // For a moment after that, watches answer 429 "storage is (re)initializing" while the watch
    // cache fills; the cluster is not ready for informers until they do not.
    await waitFor(`a watch on ${crd.metadata.name}`, deadline, processes, async () => {
      const response = await request(`/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}?watch=1`);
      await response.body?.cancel();
      return response.ok;
    });
  }
}

function kubeconfig(url: string, caPem: string, options: { token: string; namespace?: string }): string {
  const context: Record<string, string> = { cluster: "e2e", user: "e2e" };
  if (options.namespace) context["namespace"] = options.namespace;
  return stringifyYaml({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "e2e", cluster: { server: url, "certificate-authority-data": btoa(caPem) } }],
    users: [{ name: "e2e", user: { token: options.token } }],
    contexts: [{ name: "e2e", context }],
    "current-context": "e2e",
  });
}

interface KubectlRun extends KubectlOptions {
  url: string;
  caPem: string;
  dir: string;
  adminKubeconfig: string;
  args: readonly string[];
}

async function kubectl(run: KubectlRun): Promise<KubectlResult> {
  let config = run.adminKubeconfig;
  if (run.token !== undefined) {
    config = `${run.dir}/kubeconfig-${randomToken().slice(0, 8)}`;
    await Deno.writeTextFile(config, kubeconfig(run.url, run.caPem, { token: run.token }));
  }
  try {
    const child = new Deno.Command("kubectl", {
      // An empty cache dir per cluster: discovery cached from an earlier cluster on another port
      // would be wrong, and ~/.kube is not ours to fill.
      args: [`--kubeconfig=${config}`, `--cache-dir=${run.dir}/kubectl-cache`, ...run.args],
      stdin: run.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: childEnv(),
      clearEnv: true,
    }).spawn();
    if (run.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(run.stdin));
      await writer.close();
    }
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    if (config !== run.adminKubeconfig) await Deno.remove(config);
  }
}
