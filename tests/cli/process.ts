/**
 * @module
 * Runs `main.ts` as a subprocess, the way an admin runs the CLI, with its output collected.
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The permissions of the `run` task (and the Containerfile), so a missing one fails here too. */
const RUN_PERMISSIONS = ["--unstable-net", "--allow-net", "--allow-env", "--allow-read"];
/** The permissions of the `demo` task. */
const DEMO_PERMISSIONS = [...RUN_PERMISSIONS, "--allow-write", "--allow-run"];
const ROOT = new URL("../../", import.meta.url).pathname;

/** A finished CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `quay-bridge <args>` to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...DEMO_PERMISSIONS, MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** A running `quay-bridge run`. */
export interface OperatorProcess {
  readonly child: Deno.ChildProcess;
  /** Lines written so far (stdout and stderr). */
  readonly lines: string[];
  kill(signal?: Deno.Signal): void;
  readonly status: Promise<Deno.CommandStatus>;
}

/** Starts `quay-bridge run <args>` in the background. */
export function startOperatorProcess(args: string[], env: Record<string, string> = {}): OperatorProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_PERMISSIONS, MAIN, "run", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
      }
    }
    if (buffer) lines.push(buffer);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return {
    child,
    lines,
    kill(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
    },
    status: child.status.then(async (s) => {
      await pumps;
      return s;
    }),
  };
}

/** The ports {@linkcode freePort} has handed out in this process. */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  // Below Linux's ephemeral range (32768-60999): a port the kernel hands out for `port: 0` is also
  // what it picks for outgoing connections, so between this probe and the operator's listen another
  // test's client could take it (seen as "the port is already in use" under --parallel).
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    // Never the same port twice in one process: two picks before either is bound would both probe
    // free, and the second operator would fail to bind while requests meant for it reached the
    // first (seen once: a "follower" whose metrics were the leader's).
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      handedOut.add(port);
      return port;
    } catch {
      // taken: try another
    }
  }
  throw new Error("no free port below the ephemeral range");
}

/**
 * Flags of one replica in the two-replica tests: its identity `replica-<i>` and a short Lease
 * (3 s), so a handover happens within the test's patience.
 */
export function replicaFlags(kubeconfig: string, namespace: string, index: number): string[] {
  return [
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    namespace,
    "--pod-name",
    `replica-${index}`,
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "250ms",
  ];
}
