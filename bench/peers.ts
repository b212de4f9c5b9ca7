/**
 * @module
 * The two operators the side-by-side benchmark runs, as processes against one cluster and one Quay:
 * quay-bridge (`main.ts run`, with the `run` task's permissions) and the upstream Go operator
 * (built from source by `upstream/build.sh`). Each is started with its webhook off, reads the
 * admin kubeconfig of the cluster, and exposes its process id for resident-memory sampling.
 */
import { freePort } from "../tests/cli/process.ts";

/** Which operator. */
export type PeerName = "quay-bridge" | "upstream";

/** A running operator process. */
export interface Peer {
  readonly name: PeerName;
  readonly pid: number;
  /** The last lines it wrote, for diagnostics. */
  tail(lines?: number): string;
  /** Heap in use in MiB from its metrics endpoint (V8's heapUsed, Go's heap_alloc), if it answers. */
  heapMiB(): Promise<number | undefined>;
  /** Whether it exited (and with what). */
  exited(): Deno.CommandStatus | undefined;
  /** Whether its `/readyz` answers 200 (quay-bridge's ops port, upstream's health-probe port). */
  ready(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Raised when the upstream operator cannot be built. */
export class UpstreamBuildError extends Error {
  override name = "UpstreamBuildError";
}

const BUILD_SCRIPT = new URL("./upstream/build.sh", import.meta.url).pathname;

/**
 * Where the upstream operator's source is: `QUAY_BRIDGE_UPSTREAM_SRC`, else the tarball of the
 * `shared/upstream-qbo/` folder beside this repository when there is one (the same layout the
 * real-Quay tests take their quay-server directory from).
 */
export function upstreamSource(explicit?: string | undefined): string | undefined {
  const named = explicit ?? Deno.env.get("QUAY_BRIDGE_UPSTREAM_SRC");
  if (named) return named;
  const beside = new URL("../../shared/upstream-qbo/upstream-qbo-src.tar.xz", import.meta.url).pathname;
  try {
    return Deno.statSync(beside).isFile ? beside : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Builds (once, cached) the upstream operator from `source`, a tarball or directory of
 * github.com/quay/quay-bridge-operator with its vendor/ tree, and returns the binary's path.
 */
export async function ensureUpstreamBinary(source: string | undefined): Promise<string> {
  if (!source) {
    throw new UpstreamBuildError(
      "The side-by-side benchmark needs the upstream operator's source: set QUAY_BRIDGE_UPSTREAM_SRC " +
        "(or --upstream-src) to a tarball or directory of github.com/quay/quay-bridge-operator with its " +
        "vendor/ tree (git clone, then go mod vendor).",
    );
  }
  const output = await new Deno.Command("bash", {
    args: [BUILD_SCRIPT, source],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const path = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || !path) {
    throw new UpstreamBuildError(`bench/upstream/build.sh failed with exit code ${output.code}`);
  }
  return path;
}

/** The environment of an operator process: no proxy variables (everything is on loopback). */
function childEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)),
  );
}

function lineBuffer(max: number) {
  const lines: string[] = [];
  return {
    lines,
    push(line: string) {
      lines.push(line);
      if (lines.length > max) lines.splice(0, lines.length - max);
    },
  };
}

async function scrape(port: number, metric: string): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await response.text();
    const value = new RegExp(`^${metric} (\\S+)$`, "m").exec(text)?.[1];
    return value === undefined ? undefined : Math.round(Number(value) / 1048576 * 10) / 10;
  } catch {
    return undefined;
  }
}

async function probeReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The Deno flags of the `run` task in deno.json (permissions, V8 flags): the benchmark runs the
 * operator exactly as `deno task run` does.
 */
async function runTaskFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = String(config.tasks.run).split(/\s+/);
  const main = words.indexOf("main.ts");
  if (words[0] !== "deno" || words[1] !== "run" || main < 0) {
    throw new Error(`deno.json's run task is not "deno run <flags> main.ts run": ${config.tasks.run}`);
  }
  return words.slice(2, main);
}

function spawnPeer(
  name: PeerName,
  command: string,
  args: string[],
  env: Record<string, string>,
  heapMiB: () => Promise<number | undefined>,
  readyzPort: number,
): Peer {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The upstream operator logs every reconcile at info level; only the tail is kept.
  const buffer = lineBuffer(200);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        buffer.push(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    }
    if (rest) buffer.push(rest);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let status: Deno.CommandStatus | undefined;
  const done = child.status.then((s) => (status = s));
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
  };
  return {
    name,
    pid: child.pid,
    heapMiB,
    tail: (n = 30) => buffer.lines.slice(-n).join("\n"),
    exited: () => status,
    ready: () => probeReady(readyzPort),
    async stop() {
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(timer);
      await pumps;
    },
  };
}

/**
 * Where an operator serves its admission webhook: `certDir` holds `apiserver.crt` and `apiserver.key`
 * (the names both read). quay-bridge listens on `port` on loopback; upstream always on `:9443`.
 */
export interface PeerWebhook {
  readonly certDir: string;
  readonly port: number;
}

/**
 * What `deno run` runs as quay-bridge: a program (a bundle) and the Deno flags, instead of `main.ts`
 * with the `run` task's flags.
 */
export interface PeerProgram {
  readonly entry: string;
  readonly flags: readonly string[];
}

/**
 * More Deno flags for quay-bridge, from `QUAY_BRIDGE_BENCH_DENO_FLAGS` (space-separated): e.g.
 * `--inspect=127.0.0.1:9339` to take a CPU profile of a burst (`bench/profile.ts`).
 */
function extraDenoFlags(): string[] {
  return (Deno.env.get("QUAY_BRIDGE_BENCH_DENO_FLAGS") ?? "").split(/\s+/).filter(Boolean);
}

/**
 * Starts quay-bridge as `deno task run` starts it (or `program`), against the kubeconfig, webhook off
 * unless `webhook` says where to serve it (files mode).
 */
export async function startQuayBridge(
  kubeconfig: string,
  webhook?: PeerWebhook,
  program?: PeerProgram,
): Promise<Peer> {
  const opsPort = freePort();
  const args = [
    "run",
    ...(program
      ? ["--no-config", ...program.flags, program.entry]
      : [...await runTaskFlags(), ...extraDenoFlags(), `${ROOT}main.ts`]),
    "run",
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    "quay-bridge",
    ...(webhook
      ? [
        "--webhook-mode",
        "files",
        "--webhook-cert-dir",
        webhook.certDir,
        "--webhook-host",
        "127.0.0.1",
        "--webhook-port",
        String(webhook.port),
      ]
      : ["--webhook-mode", "off"]),
    "--leader-elect",
    "false",
    "--ops-host",
    "127.0.0.1",
    "--ops-port",
    String(opsPort),
    "--log-level",
    "warn",
  ];
  return spawnPeer(
    "quay-bridge",
    Deno.execPath(),
    args,
    { ...childEnv(), NO_COLOR: "1" },
    () => scrape(opsPort, "process_heap_bytes"),
    opsPort,
  );
}

/**
 * The port upstream's webhook server listens on, on every interface: its main.go sets it and has
 * no flag for it.
 */
export const UPSTREAM_WEBHOOK_PORT = 9443;

/**
 * Starts the upstream operator binary against the kubeconfig, webhook off (`DISABLE_WEBHOOK`)
 * unless `webhook` names its certificate directory (`WEBHOOK_CERT_DIR`; its port is always 9443).
 */
export function startUpstream(binary: string, kubeconfig: string, webhook?: PeerWebhook): Peer {
  const metricsPort = freePort();
  const probePort = freePort();
  const args = [
    "-kubeconfig",
    kubeconfig,
    "-metrics-bind-address",
    `127.0.0.1:${metricsPort}`,
    "-health-probe-bind-address",
    `127.0.0.1:${probePort}`,
  ];
  return spawnPeer(
    "upstream",
    binary,
    args,
    webhook ? { ...childEnv(), WEBHOOK_CERT_DIR: webhook.certDir } : { ...childEnv(), DISABLE_WEBHOOK: "" },
    () => scrape(metricsPort, "go_memstats_heap_alloc_bytes"),
    probePort,
  );
}

function parseRss(line: string): number | undefined {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(line)?.[1];
  return kb === undefined ? undefined : Math.round(Number(kb) / 1024 * 10) / 10;
}

/**
 * Resident set size of a process in MiB, `VmRSS` of `/proc/<pid>/status`; undefined once it is gone.
 * Read by `grep`: Deno lets a script read `/proc` only with `--allow-all`.
 */
export async function rssMiB(pid: number): Promise<number | undefined> {
  const output = await new Deno.Command("grep", {
    args: ["^VmRSS:", `/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return output.success ? parseRss(new TextDecoder().decode(output.stdout)) : undefined;
}

/** Samples a process's RSS about every 100 ms (one shell loop) until stopped; reports the peak. */
export function rssSampler(pid: number): { stop(): Promise<number> } {
  const child = new Deno.Command("sh", {
    args: ["-c", `while grep '^VmRSS:' /proc/${pid}/status; do sleep 0.1; done`],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let peak = 0;
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n")) {
        const rss = parseRss(line);
        if (rss !== undefined && rss > peak) peak = rss;
      }
    }
  })();
  return {
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await reading;
      const rss = await rssMiB(pid);
      return rss !== undefined && rss > peak ? rss : peak;
    },
  };
}
