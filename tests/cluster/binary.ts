/**
 * @module
 * Finds or builds the end-to-end control plane binary through `build.sh`, which owns the cache
 * layout and the build flags so CI can call it directly as well.
 */

/** Raised when the kube-apiserver binary cannot be built; the message says why and what to do. */
export class KubeBinaryError extends Error {
  override name = "KubeBinaryError";
}

const BUILD_SCRIPT = new URL("./build.sh", import.meta.url).pathname;

let pending: Promise<string> | undefined;

/**
 * Returns the path of the cached control plane binary (kube-apiserver, kube-controller-manager and
 * etcd in one), building it first when absent. The first build takes minutes and prints its timing
 * to stderr; later calls cost a hash of four files. Fails with {@linkcode KubeBinaryError} when Go
 * or the module proxy is unavailable, never silently.
 */
export function ensureKubeApiserverBinary(): Promise<string> {
  pending ??= build().catch((error) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

async function build(): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    // stderr is inherited so the first build's progress and timing reach the test log.
    output = await new Deno.Command("bash", { args: [BUILD_SCRIPT], stdout: "piped", stderr: "inherit" })
      .output();
  } catch (cause) {
    throw new KubeBinaryError(`cannot run ${BUILD_SCRIPT}`, { cause });
  }
  const path = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || path === "") {
    throw new KubeBinaryError(
      `${BUILD_SCRIPT} failed with exit code ${output.code}: ` +
        (BUILD_FAILURES[output.code] ?? "see stderr"),
    );
  }
  return path;
}

const BUILD_FAILURES: Record<number, string> = {
  2: "Go is not installed; the end-to-end suite needs Go >= 1.25 to build kube-apiserver",
  3: "the Kubernetes Go modules cannot be downloaded (check GOPROXY and network access)",
  4: "go build failed",
};
