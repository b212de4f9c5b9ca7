/**
 * @module
 * Command-line and environment configuration, parsed once into a frozen, typed object. This is the
 * only module (besides `main.ts`) that reads `Deno.env` or arguments. Every flag has an environment
 * variable (`QUAY_BRIDGE_<FLAG>`), and the upstream operator's variables (`WEBHOOK_CERT_DIR`,
 * `DISABLE_WEBHOOK`) keep working.
 */
import { parseArgs } from "node:util";
import type { LogLevel } from "./log.ts";

/** The subcommands. */
export type Command = "run" | "demo" | "check" | "plan" | "version" | "help";

/** How the webhook gets its serving certificate. */
export type WebhookMode = "files" | "self-managed" | "off";

/** Parsed configuration. */
export interface Config {
  readonly command: Command;
  /** `--help` was given with a command. */
  readonly help: boolean;
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
  /** The operator's namespace (Lease, webhook Secret). */
  readonly namespace: string;
  /**
   * `namespace` was given (flag, environment, in-cluster file); otherwise `run` takes the
   * kubeconfig context's namespace, as kubectl does.
   */
  readonly namespaceGiven: boolean;
  /** Namespaces a QuayIntegration's credentials Secret may live in; undefined: the operator's. */
  readonly credentialsNamespaces: readonly string[] | undefined;
  /** This replica's identity (pod name). */
  readonly podName: string;
  readonly logLevel: LogLevel;
  readonly resyncMs: number;
  readonly deletionBudgetMs: number;
  readonly concurrency: number;
  readonly quayTimeoutMs: number;
  readonly leaderElect: boolean;
  readonly leaseName: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly webhookMode: WebhookMode;
  readonly webhookPort: number;
  readonly webhookHost: string;
  readonly webhookCertDir: string;
  readonly webhookPath: string;
  /** Name of the MutatingWebhookConfiguration the operator keeps the caBundle of (self-managed). */
  readonly webhookConfigName: string;
  /** Name of the Service in front of the webhook (self-managed, in cluster). */
  readonly webhookServiceName: string;
  /** URL the API server calls in self-managed mode outside a cluster. */
  readonly webhookUrl: string | undefined;
  /** Secret holding the self-managed CA and serving certificate. */
  readonly webhookSecretName: string;
  /** Time budget for provisioning a namespace on demand inside an admission request. */
  readonly admissionBudgetMs: number;
  /** Plain-HTTP port for /metrics, /healthz, /readyz; 0 disables. */
  readonly opsPort: number;
  readonly opsHost: string;
  /** `plan` output format. */
  readonly output: "text" | "json";
  /** Operator options for `demo`. */
  readonly demoKeep: boolean;
}

/** Thrown for bad flags or values; `main.ts` prints it with the usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const COMMANDS: readonly Command[] = ["run", "demo", "check", "plan", "version", "help"];

/** Parses `10m`, `30s`, `250ms`, `1h` or a number of seconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--${flag}: "${value}" is not a duration (e.g. 30s, 10m, 500ms)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return Math.round(n * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"]);
}

function int(value: string, flag: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${flag}: "${value}" must be an integer ≥ ${min}`);
  }
  return n;
}

const OPTIONS = {
  kubeconfig: { type: "string" },
  context: { type: "string" },
  namespace: { type: "string" },
  "credentials-namespaces": { type: "string" },
  "pod-name": { type: "string" },
  "log-level": { type: "string" },
  resync: { type: "string" },
  "deletion-budget": { type: "string" },
  concurrency: { type: "string" },
  "quay-timeout": { type: "string" },
  "leader-elect": { type: "string" },
  "lease-name": { type: "string" },
  "lease-duration": { type: "string" },
  "renew-deadline": { type: "string" },
  "retry-period": { type: "string" },
  "webhook-mode": { type: "string" },
  "webhook-port": { type: "string" },
  "webhook-host": { type: "string" },
  "webhook-cert-dir": { type: "string" },
  "webhook-path": { type: "string" },
  "webhook-config-name": { type: "string" },
  "webhook-service-name": { type: "string" },
  "webhook-url": { type: "string" },
  "webhook-secret-name": { type: "string" },
  "admission-budget": { type: "string" },
  "ops-port": { type: "string" },
  "ops-host": { type: "string" },
  output: { type: "string", short: "o" },
  keep: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Flag = keyof typeof OPTIONS;

/** Where configuration comes from. */
export interface ConfigSources {
  args: readonly string[];
  env: (name: string) => string | undefined;
  /** Reads the in-cluster namespace file, if present. */
  inClusterNamespace?: () => string | undefined;
}

/** Parses arguments and environment into a frozen {@linkcode Config}. */
export function parseConfig(sources: ConfigSources): Config {
  let parsed;
  try {
    parsed = parseArgs({ args: [...sources.args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const [first, ...rest] = parsed.positionals;
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const command = (first ?? "help") as Command;
  if (!COMMANDS.includes(command)) throw new UsageError(`Unknown command "${first}"`);
  const values = parsed.values as Partial<Record<Flag, string | boolean>>;
  const env = (name: string) => {
    const v = sources.env(name);
    return v === undefined || v === "" ? undefined : v;
  };
  const get = (flag: Flag, ...envNames: string[]): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    for (const name of [`QUAY_BRIDGE_${flag.toUpperCase().replaceAll("-", "_")}`, ...envNames]) {
      const e = env(name);
      if (e !== undefined) return e;
    }
    return undefined;
  };
  const duration = (flag: Flag, fallback: string) => parseDuration(get(flag) ?? fallback, flag);
  const bool = (flag: Flag, fallback: boolean) => {
    const v = get(flag);
    if (v === undefined) return fallback;
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    throw new UsageError(`--${flag}: "${v}" must be true or false`);
  };
  const logLevel = (get("log-level", "LOG_LEVEL") ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new UsageError(`--log-level: "${logLevel}" must be debug, info, warn or error`);
  }
  const kubeconfig = get("kubeconfig", "KUBECONFIG");
  const inCluster = kubeconfig === undefined && env("KUBERNETES_SERVICE_HOST") !== undefined;
  // The upstream operator disables the webhook when DISABLE_WEBHOOK is present at all.
  const disabled = sources.env("DISABLE_WEBHOOK") !== undefined;
  const certDir = get("webhook-cert-dir", "WEBHOOK_CERT_DIR");
  const mode = (get("webhook-mode") ??
    (disabled ? "off" : certDir || inCluster ? "files" : "self-managed")) as WebhookMode;
  if (!["files", "self-managed", "off"].includes(mode)) {
    throw new UsageError(`--webhook-mode: "${mode}" must be files, self-managed or off`);
  }
  const output = (get("output") ?? "text") as "text" | "json";
  if (output !== "text" && output !== "json") throw new UsageError(`--output: must be text or json`);
  const givenNamespace = get("namespace", "POD_NAMESPACE") ?? sources.inClusterNamespace?.();
  const podName = get("pod-name", "POD_NAME") ?? `quay-bridge-${crypto.randomUUID().slice(0, 8)}`;
  return Object.freeze({
    command: values.help && command === "help" ? "help" : command,
    help: values.help === true,
    kubeconfig,
    context: get("context"),
    namespace: givenNamespace ?? "quay-bridge",
    namespaceGiven: givenNamespace !== undefined,
    credentialsNamespaces: get("credentials-namespaces")?.split(",").map((n) => n.trim()).filter((n) => n),
    podName,
    logLevel,
    resyncMs: duration("resync", "10m"),
    deletionBudgetMs: duration("deletion-budget", "5m"),
    concurrency: int(get("concurrency") ?? "8", "concurrency", 1),
    quayTimeoutMs: duration("quay-timeout", "10s"),
    leaderElect: bool("leader-elect", true),
    leaseName: get("lease-name") ?? "quay-bridge-leader",
    leaseDurationMs: duration("lease-duration", "15s"),
    renewDeadlineMs: duration("renew-deadline", "10s"),
    retryPeriodMs: duration("retry-period", "2s"),
    webhookMode: mode,
    webhookPort: int(get("webhook-port") ?? "8443", "webhook-port"),
    webhookHost: get("webhook-host") ?? "0.0.0.0",
    webhookCertDir: certDir ?? "/apiserver.local.config/certificates",
    webhookPath: get("webhook-path") ?? "/admissionwebhook",
    webhookConfigName: get("webhook-config-name") ?? "quay-bridge",
    webhookServiceName: get("webhook-service-name") ?? "quay-bridge-webhook",
    webhookUrl: get("webhook-url"),
    webhookSecretName: get("webhook-secret-name") ?? "quay-bridge-webhook-certs",
    admissionBudgetMs: duration("admission-budget", "7s"),
    opsPort: int(get("ops-port") ?? "8080", "ops-port"),
    opsHost: get("ops-host") ?? "0.0.0.0",
    output,
    demoKeep: values.keep === true,
  });
}

/** The usage text. */
export const USAGE = `quay-bridge — makes a Red Hat Quay registry the image registry of an OpenShift cluster

Usage: quay-bridge <command> [flags]

Commands:
  run       Run the operator (kubeconfig, KUBECONFIG, or in-cluster configuration)
  demo      Start the built-in test world and play the seed walkthrough step by step
  check     Preflight: Quay reachable, token valid with the scopes needed, CRDs and webhook present
  plan      Dry run: what the operator would change in Quay and the cluster
  version   Print the version

Flags (each also QUAY_BRIDGE_<FLAG> in the environment):
  --kubeconfig <file>          Kubernetes configuration (also KUBECONFIG); in-cluster when absent
  --context <name>             kubeconfig context
  --namespace <ns>             The operator's namespace (also POD_NAMESPACE) [in a pod its own;
                               else the kubeconfig context's, else quay-bridge]
  --credentials-namespaces <ns,…> Namespaces a QuayIntegration may read its credentials Secret
                               from [the operator's namespace]
  --pod-name <name>            This replica's identity (also POD_NAME)
  --log-level <level>          debug, info, warn, error (also LOG_LEVEL) [info]
  --resync <duration>          Re-read Quay for each synced namespace this often [10m]
  --deletion-budget <duration> Keep retrying an organization's deletion this long [5m]
  --concurrency <n>            Namespaces reconciled at once [8]
  --quay-timeout <duration>    Per-request timeout for Quay [10s]
  --leader-elect <bool>        Lease leader election; only the leader writes [true]
  --lease-name <name>          Lease name [quay-bridge-leader]
  --webhook-mode <mode>        files | self-managed | off [files in a cluster or with a cert dir,
                               self-managed otherwise; off when DISABLE_WEBHOOK is set]
  --webhook-port <port>        HTTPS port of the admission webhook [8443]
  --webhook-cert-dir <dir>     tls.crt/tls.key or apiserver.crt/apiserver.key (also WEBHOOK_CERT_DIR)
                               [/apiserver.local.config/certificates]
  --webhook-path <path>        [/admissionwebhook]
  --webhook-config-name <name> MutatingWebhookConfiguration kept by self-managed mode [quay-bridge]
  --webhook-url <url>          Self-managed outside a cluster: the URL the API server calls
  --admission-budget <dur>     Time to provision a namespace on demand during admission [7s]
  --ops-port <port>            /metrics, /healthz, /readyz over plain HTTP; 0 disables [8080]
  -o, --output <fmt>           plan/check output: text or json [text]
  --keep                       demo: keep the world running after the walkthrough
  -h, --help                   Show this help
`;
