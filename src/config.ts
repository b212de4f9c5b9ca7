/**
 * @module
 * Command-line and environment configuration, parsed once into a frozen, typed object. This is the
 * only module (besides `main.ts`) that reads `Deno.env` or arguments. One table, {@linkcode FLAGS},
 * drives the parser, `--help` and the flag table of docs/configuration.md (a test compares the three),
 * so they cannot drift. Every flag has an environment variable (`QUAY_BRIDGE_<FLAG>`), and the upstream
 * operator's variables (`WEBHOOK_CERT_DIR`, `DISABLE_WEBHOOK`) keep working. The proxy variables
 * (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, upper or lower case) are read here too.
 */
import { ArgsError, type ArgsOptions, parseArgs } from "./args.ts";
import type { KubeEnvironment } from "./kube/kubeconfig.ts";
import type { LogLevel } from "./log.ts";
import { ProxyConfigError, type ProxyEnvironment, validateProxyEnvironment } from "./http/proxy.ts";

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
  /** `HOME` and `KUBERNETES_SERVICE_HOST`/`_PORT`, for the kubeconfig loader. */
  readonly kubeEnvironment: KubeEnvironment;
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
  /** Poll each integration's Quay audit log this often; 0 turns following it off. */
  readonly auditIntervalMs: number;
  /** The resync of an integration whose audit log is followed. */
  readonly auditedResyncMs: number;
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
  /** The proxy variables, as read (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`). */
  readonly proxy: ProxyEnvironment;
}

/**
 * A bad flag, environment variable or value. `main.ts` prints its message, which names the flag or
 * variable and what would be accepted, as one line and exits with code 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const COMMANDS: readonly Command[] = ["run", "demo", "check", "plan", "version", "help"];

/** How a flag's value is read and checked. */
export type FlagKind =
  | "string"
  | "duration"
  | "port"
  | "count"
  | "bool"
  | "switch"
  | { readonly oneOf: readonly string[] };

/** One flag: the parser, `--help` and docs/configuration.md are all made from these. */
export interface FlagSpec {
  /** Long name without dashes. */
  readonly name: string;
  readonly short?: string;
  readonly kind: FlagKind;
  /** Placeholder of the value in `--help` and the docs (`<file>`); none for a switch. */
  readonly placeholder?: string;
  /** Environment variables read besides `QUAY_BRIDGE_<FLAG>`, in order of precedence. */
  readonly env?: readonly string[];
  /** Only on the command line (`--help`): no `QUAY_BRIDGE_<FLAG>`. */
  readonly commandLineOnly?: boolean;
  /** The default the parser uses, when it is a constant. */
  readonly default?: string;
  /** The default as shown to people, when it is not a constant (or there is none). */
  readonly shownDefault?: string;
  /** One line for `--help`. */
  readonly help: string;
  /** The meaning column of docs/configuration.md; `help` when absent. */
  readonly doc?: string;
}

/** The environment variable every flag has. */
export function flagEnvName(name: string): string {
  return `QUAY_BRIDGE_${name.toUpperCase().replaceAll("-", "_")}`;
}

/** Every environment variable of a flag, in order of precedence. */
export function flagEnvNames(f: FlagSpec): string[] {
  return [...(f.commandLineOnly ? [] : [flagEnvName(f.name)]), ...(f.env ?? [])];
}

/** Every flag, in the order of `--help` and the docs. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "kubeconfig",
    kind: "string",
    placeholder: "<file>",
    env: ["KUBECONFIG"],
    shownDefault: "in-cluster, else ~/.kube/config",
    help: "Kubernetes configuration file",
    doc: "Kubernetes configuration; in a pod (service-account files present) the service account is used",
  },
  {
    name: "context",
    kind: "string",
    placeholder: "<name>",
    shownDefault: "current context",
    help: "kubeconfig context",
  },
  {
    name: "namespace",
    kind: "string",
    placeholder: "<ns>",
    env: ["POD_NAMESPACE"],
    shownDefault: "the pod's namespace; outside a cluster the kubeconfig context's, else quay-bridge",
    help: "The operator's namespace: its Lease and the self-managed webhook Secret",
    doc: "The operator's namespace: its Lease and the self-managed webhook Secret; `run` stops at once, " +
      "naming this flag, when it does not exist",
  },
  {
    name: "credentials-namespaces",
    kind: "string",
    placeholder: "<ns,…>",
    shownDefault: "the operator's namespace",
    help: "Namespaces a QuayIntegration may read its credentials Secret from",
    doc: "Namespaces a QuayIntegration may read its credentials Secret from; any other is refused " +
      "(`Ready=False`, reason `CredentialsNamespaceNotAllowed`) and nothing is sent to its host " +
      "(see [security.md](security.md))",
  },
  {
    name: "pod-name",
    kind: "string",
    placeholder: "<name>",
    env: ["POD_NAME"],
    shownDefault: "quay-bridge-<random>",
    help: "This replica's identity in the Lease and in Events",
  },
  {
    name: "log-level",
    kind: { oneOf: ["debug", "info", "warn", "error"] },
    placeholder: "<level>",
    env: ["LOG_LEVEL"],
    default: "info",
    help: "debug, info, warn or error",
  },
  {
    name: "resync",
    kind: "duration",
    placeholder: "<duration>",
    default: "10m",
    help:
      "Re-read Quay for each synced namespace this often (drift repair) when its audit log is not followed",
  },
  {
    name: "audit-interval",
    kind: "duration",
    placeholder: "<duration>",
    default: "5s",
    help:
      "Read Quay's super-user audit log this often: re-read the organizations changed by hand, import tags pushed to Quay; 0 = off",
    doc:
      "read Quay's super-user audit log this often: re-read the organizations changed by hand and import tags pushed to Quay into their ImageStreams (push → tag within about this interval plus the import). Idle, a poll is one call (`GET /api/v1/superuser/aggregatelogs`) per integration: 0.2 calls/s at 5 s, which with the `--audited-resync` re-reads (3 calls per namespace per 12 h: 0.7/s at 10,000 namespaces) stays under 1 call/s; 0 = off",
  },
  {
    name: "audited-resync",
    kind: "duration",
    placeholder: "<duration>",
    default: "12h",
    help: "The safety-net re-read of each synced namespace while its integration's audit log is followed",
  },
  {
    name: "deletion-budget",
    kind: "duration",
    placeholder: "<duration>",
    default: "5m",
    help: "Keep retrying an organization's deletion this long",
    doc:
      "keep retrying an organization's deletion this long, counted from the first failure (kept on the Namespace, so restarts do not extend it), before removing the finalizer anyway (with an Event)",
  },
  {
    name: "concurrency",
    kind: "count",
    placeholder: "<n>",
    default: "16",
    help: "Namespaces reconciled at once",
    doc:
      "Namespaces reconciled at once. Quay sees at most 8 requests at a time per QuayIntegration whatever this says: a namespace's pass spends most of its time on Kubernetes writes, so more passes than Quay slots keep both busy",
  },
  {
    name: "quay-timeout",
    kind: "duration",
    placeholder: "<duration>",
    default: "10s",
    help: "Per-request timeout for Quay",
  },
  {
    name: "leader-elect",
    kind: "bool",
    placeholder: "<bool>",
    default: "true",
    help: "Lease leader election; only the leader writes",
  },
  {
    name: "lease-name",
    kind: "string",
    placeholder: "<name>",
    default: "quay-bridge-leader",
    help: "The coordination.k8s.io/v1 Lease; give two copies side by side different names",
  },
  {
    name: "lease-duration",
    kind: "duration",
    placeholder: "<duration>",
    default: "15s",
    help: "How long a Lease is valid without renewal",
  },
  {
    name: "renew-deadline",
    kind: "duration",
    placeholder: "<duration>",
    default: "10s",
    help: "The leader gives up (and exits) when it cannot renew within this",
  },
  {
    name: "retry-period",
    kind: "duration",
    placeholder: "<duration>",
    default: "2s",
    help: "How often candidates try and the leader renews",
  },
  {
    name: "webhook-mode",
    kind: { oneOf: ["files", "self-managed", "off"] },
    placeholder: "<mode>",
    env: ["DISABLE_WEBHOOK"],
    shownDefault: "files in a cluster or with a cert dir, else self-managed; off when DISABLE_WEBHOOK is set",
    help: "files | self-managed | off",
    doc: "`files`: serve the certificate in `--webhook-cert-dir`, reloaded on change; `self-managed`: " +
      "create and rotate a CA and certificate, keep the MWC's caBundle; `off`. " +
      "`DISABLE_WEBHOOK` (present, any value) means `off`",
  },
  {
    name: "webhook-port",
    kind: "port",
    placeholder: "<port>",
    default: "8443",
    help: "HTTPS port of the admission webhook",
  },
  {
    name: "webhook-host",
    kind: "string",
    placeholder: "<addr>",
    default: "0.0.0.0",
    help: "Listen address of the admission webhook",
  },
  {
    name: "webhook-cert-dir",
    kind: "string",
    placeholder: "<dir>",
    env: ["WEBHOOK_CERT_DIR"],
    default: "/apiserver.local.config/certificates",
    help: "tls.crt/tls.key or apiserver.crt/apiserver.key (files mode)",
  },
  {
    name: "webhook-path",
    kind: "string",
    placeholder: "<path>",
    default: "/admissionwebhook",
    help: "The path the API server posts AdmissionReviews to",
  },
  {
    name: "webhook-config-name",
    kind: "string",
    placeholder: "<name>",
    default: "quay-bridge",
    help: "The MutatingWebhookConfiguration whose caBundle self-managed mode keeps",
  },
  {
    name: "webhook-service-name",
    kind: "string",
    placeholder: "<name>",
    default: "quay-bridge-webhook",
    help: "The Service in front of the webhook (self-managed certificate names)",
  },
  {
    name: "webhook-url",
    kind: "string",
    placeholder: "<url>",
    shownDefault: "—",
    help: "Self-managed outside a cluster: the URL the API server calls instead of the Service",
  },
  {
    name: "webhook-secret-name",
    kind: "string",
    placeholder: "<name>",
    default: "quay-bridge-webhook-certs",
    help: "The Secret self-managed mode keeps its CA and certificate in",
  },
  {
    name: "admission-budget",
    kind: "duration",
    placeholder: "<duration>",
    default: "7s",
    help: "Time to provision a namespace on demand during an admission",
    doc:
      "time to provision a namespace on demand during an admission; keep it under the webhook's `timeoutSeconds` (10)",
  },
  {
    name: "ops-port",
    kind: "port",
    placeholder: "<port>",
    default: "8080",
    help: "/metrics, /healthz, /readyz over plain HTTP; 0 disables",
  },
  {
    name: "ops-host",
    kind: "string",
    placeholder: "<addr>",
    default: "0.0.0.0",
    help: "Listen address of the ops server",
  },
  {
    name: "output",
    short: "o",
    kind: { oneOf: ["text", "json"] },
    placeholder: "<fmt>",
    default: "text",
    help: "plan and check output: text or json",
  },
  {
    name: "keep",
    kind: "switch",
    shownDefault: "off",
    help: "demo: keep the world running after the walkthrough",
  },
  {
    name: "help",
    short: "h",
    kind: "switch",
    commandLineOnly: true,
    shownDefault: "off",
    help: "Show this help",
  },
];

const SPECS = new Map(FLAGS.map((f) => [f.name, f]));

/** The `parseArgs` options made from {@linkcode FLAGS}. */
function parserOptions(): ArgsOptions {
  const out: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const f of FLAGS) {
    out[f.name] = {
      type: f.kind === "switch" ? "boolean" : "string",
      ...(f.short ? { short: f.short } : {}),
    };
  }
  return out;
}

/** Parses `10m`, `30s`, `250ms`, `1h` or a number of seconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${where(flag)}: "${value}" is not a duration (e.g. 30s, 10m, 500ms)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return Math.round(n * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"]);
}

/** `--flag`, or the environment variable the value came from. */
function where(source: string): string {
  return source.startsWith("-") || /^[A-Z_]+$/.test(source) ? source : `--${source}`;
}

/** Where configuration comes from. */
export interface ConfigSources {
  args: readonly string[];
  env: (name: string) => string | undefined;
  /** Reads the in-cluster namespace file, if present. */
  inClusterNamespace?: () => string | undefined;
}

/** A raw value and where it came from (`--flag` or the variable's name), for error messages. */
interface Raw {
  value: string;
  source: string;
}

/** Parses arguments and environment into a frozen {@linkcode Config}. */
export function parseConfig(sources: ConfigSources): Config {
  let parsed;
  try {
    parsed = parseArgs(sources.args, parserOptions());
  } catch (error) {
    // The message names the flag and the fix (`--x needs a value (--x <value> or --x=<value>)`).
    if (error instanceof ArgsError) throw new UsageError(error.message);
    throw error;
  }
  const [first, ...rest] = parsed.positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}": one command at a time`);
  const command = (first ?? "help") as Command;
  if (!COMMANDS.includes(command)) {
    throw new UsageError(`unknown command "${first}": use one of ${COMMANDS.join(", ")}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const env = (name: string) => {
    const v = sources.env(name);
    return v === undefined || v === "" ? undefined : v;
  };
  const raw = (name: string): Raw | undefined => {
    const spec = SPECS.get(name);
    if (!spec) throw new Error(`no flag ${name} in FLAGS`);
    const v = values[name];
    if (typeof v === "string") return { value: v, source: `--${name}` };
    // DISABLE_WEBHOOK is a presence switch, not a value of --webhook-mode.
    for (const variable of flagEnvNames(spec).filter((e) => e !== "DISABLE_WEBHOOK")) {
      const e = env(variable);
      if (e !== undefined) return { value: e, source: variable };
    }
    return spec.default === undefined ? undefined : { value: spec.default, source: `--${name}` };
  };
  const str = (name: string) => raw(name)?.value;
  const must = (name: string): Raw => {
    const r = raw(name);
    if (!r) throw new Error(`flag ${name} has no default`);
    return r;
  };
  const duration = (name: string) => {
    const r = must(name);
    return parseDuration(r.value, r.source);
  };
  const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const r = must(name);
    const n = Number(r.value);
    if (!/^\d+$/.test(r.value.trim()) || n < min || n > max) {
      throw new UsageError(
        `${r.source}: "${r.value}" must be an integer from ${min} to ${
          max === Number.MAX_SAFE_INTEGER ? "∞" : max
        }`,
      );
    }
    return n;
  };
  const port = (name: string) => integer(name, 0, 65535);
  const bool = (name: string) => {
    const r = must(name);
    if (/^(true|1|yes)$/i.test(r.value)) return true;
    if (/^(false|0|no)$/i.test(r.value)) return false;
    throw new UsageError(`${r.source}: "${r.value}" must be true or false`);
  };
  const oneOf = <T extends string>(name: string, r: Raw | undefined): T | undefined => {
    if (!r) return undefined;
    const kind = SPECS.get(name)?.kind as { oneOf: readonly string[] };
    if (!kind.oneOf.includes(r.value)) {
      throw new UsageError(`${r.source}: "${r.value}" must be ${kind.oneOf.join(", ")}`);
    }
    return r.value as T;
  };
  const kubeconfig = str("kubeconfig");
  const inCluster = kubeconfig === undefined && env("KUBERNETES_SERVICE_HOST") !== undefined;
  // The upstream operator disables the webhook when DISABLE_WEBHOOK is present at all.
  const disabled = sources.env("DISABLE_WEBHOOK") !== undefined;
  const certDirGiven = values["webhook-cert-dir"] !== undefined ||
    env(flagEnvName("webhook-cert-dir")) !== undefined || env("WEBHOOK_CERT_DIR") !== undefined;
  const mode = oneOf<WebhookMode>("webhook-mode", raw("webhook-mode")) ??
    (disabled ? "off" : certDirGiven || inCluster ? "files" : "self-managed");
  const givenNamespace = str("namespace") ?? sources.inClusterNamespace?.();
  const podName = str("pod-name") ?? `quay-bridge-${crypto.randomUUID().slice(0, 8)}`;
  const proxy = proxyEnvironment(env);
  return Object.freeze({
    command: values.help && command === "help" ? "help" : command,
    help: values.help === true,
    kubeconfig,
    context: str("context"),
    kubeEnvironment: Object.freeze({
      home: env("HOME"),
      serviceHost: env("KUBERNETES_SERVICE_HOST"),
      servicePort: env("KUBERNETES_SERVICE_PORT"),
    }),
    namespace: givenNamespace ?? "quay-bridge",
    namespaceGiven: givenNamespace !== undefined,
    credentialsNamespaces: str("credentials-namespaces")?.split(",").map((n) => n.trim()).filter((n) => n),
    podName,
    logLevel: oneOf<LogLevel>("log-level", must("log-level")) as LogLevel,
    resyncMs: duration("resync"),
    auditIntervalMs: duration("audit-interval"),
    auditedResyncMs: duration("audited-resync"),
    deletionBudgetMs: duration("deletion-budget"),
    concurrency: integer("concurrency", 1),
    quayTimeoutMs: duration("quay-timeout"),
    leaderElect: bool("leader-elect"),
    leaseName: must("lease-name").value,
    leaseDurationMs: duration("lease-duration"),
    renewDeadlineMs: duration("renew-deadline"),
    retryPeriodMs: duration("retry-period"),
    webhookMode: mode,
    webhookPort: port("webhook-port"),
    webhookHost: must("webhook-host").value,
    webhookCertDir: must("webhook-cert-dir").value,
    webhookPath: must("webhook-path").value,
    webhookConfigName: must("webhook-config-name").value,
    webhookServiceName: must("webhook-service-name").value,
    webhookUrl: str("webhook-url"),
    webhookSecretName: must("webhook-secret-name").value,
    admissionBudgetMs: duration("admission-budget"),
    opsPort: port("ops-port"),
    opsHost: must("ops-host").value,
    output: oneOf<"text" | "json">("output", must("output")) as "text" | "json",
    demoKeep: values.keep === true || (raw("keep") !== undefined && bool("keep")),
    proxy,
  });
}

/**
 * The proxy variables the way Go's `httpproxy.FromEnvironment` reads them: the upper-case name
 * first, then the lower-case one. A proxy URL that cannot be used is a usage error naming the variable.
 */
function proxyEnvironment(env: (name: string) => string | undefined): ProxyEnvironment {
  const pick = (upper: string) => {
    const u = env(upper);
    if (u !== undefined) return { value: u, source: upper };
    const l = env(upper.toLowerCase());
    return l === undefined ? undefined : { value: l, source: upper.toLowerCase() };
  };
  const https = pick("HTTPS_PROXY");
  const http = pick("HTTP_PROXY");
  const proxy: ProxyEnvironment = {
    httpsProxy: https?.value,
    httpProxy: http?.value,
    noProxy: pick("NO_PROXY")?.value ?? "",
  };
  try {
    validateProxyEnvironment(proxy);
  } catch (error) {
    if (!(error instanceof ProxyConfigError)) throw error;
    const source = error.variable === "httpsProxy" ? https?.source : http?.source;
    throw new UsageError(`${source}: ${error.message}`);
  }
  return proxy;
}

/** The usage text, made from {@linkcode FLAGS}. */
export const USAGE: string = usage();

function usage(): string {
  const lines = [
    "quay-bridge — makes a Red Hat Quay registry the image registry of an OpenShift cluster",
    "",
    "Usage: quay-bridge <command> [flags]",
    "",
    "Commands:",
    "  run       Run the operator (kubeconfig, KUBECONFIG, or in-cluster configuration)",
    "  demo      Start the built-in test world and play the seed walkthrough step by step",
    "  check     Preflight: Quay reachable, token valid with the scopes needed, CRDs and webhook present",
    "  plan      Dry run: what the operator would change in Quay and the cluster",
    "  version   Print the version",
    "",
    "Flags (a flag wins over its environment variables; durations: 500ms, 30s, 10m, 1h):",
  ];
  for (const f of FLAGS) {
    lines.push(`  ${flagSynopsis(f).padEnd(34)} ${f.help}`);
    const env = flagEnvNames(f).join(", ") || "—";
    lines.push(`  ${"".padEnd(34)} env: ${env}; default: ${shownDefault(f)}`);
  }
  lines.push(
    "",
    "Proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or lower case) apply to Quay and the Kubernetes API.",
    "",
  );
  return lines.join("\n");
}

/** `-o, --output <fmt>` */
export function flagSynopsis(f: FlagSpec): string {
  const long = `--${f.name}${f.placeholder ? ` ${f.placeholder}` : ""}`;
  return f.short ? `-${f.short}, ${long}` : long;
}

/** The default as shown in `--help` and the docs. */
export function shownDefault(f: FlagSpec): string {
  return f.shownDefault ?? f.default ?? "—";
}

/** The proxy variables, as `main.ts` clears them once read. */
export const PROXY_VARIABLES: readonly string[] = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
];
