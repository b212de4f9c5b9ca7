/**
 * @module
 * The ecosystem's own tools, found or built on demand: the OLM bundle validators and kubeconform
 * (Go, built once by `build.sh` into the cache), promtool and prometheus (Debian's `prometheus`
 * package, installed by `prometheus.sh` when missing), and the CRDs of other projects that the
 * manifests use, taken from those projects' Go modules (pinned, checked against the Go checksum
 * database by `go mod download`). Each fails with {@linkcode ToolError} saying what is missing,
 * never skips.
 */
import { parseAllDocuments } from "yaml";

/** Raised when a tool cannot be found, built or installed; the message says what to do. */
export class ToolError extends Error {
  override name = "ToolError";
}

const HERE = new URL("./", import.meta.url).pathname;
/** The repository root (ends in `/`). */
export const ROOT = new URL("../../", import.meta.url).pathname;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Writes a line to the test log (the tools' reports belong in CI's output). */
export function report(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

/** Runs a command; resolves to its exit code and output (stderr inherited when `inheritStderr`). */
export async function run(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; stdin?: string; inheritStderr?: boolean; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: options.inheritStderr ? "inherit" : "piped",
    env: options.env,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: options.inheritStderr ? "" : decoder.decode(out.stderr),
  };
}

const BUILD_FAILURES: Record<number, string> = {
  2: "Go is not installed; the ecosystem suite needs Go >= 1.25",
  3: "the Go modules cannot be downloaded (check GOPROXY and network access)",
  4: "go build failed",
};

const built = new Map<string, Promise<string>>();

/** The path of a cached Go tool of this folder (`olm` or `kubeconform`), built when absent. */
export function goTool(tool: "olm" | "kubeconform"): Promise<string> {
  let pending = built.get(tool);
  if (!pending) {
    pending = (async () => {
      const out = await run("bash", [`${HERE}build.sh`, tool], { inheritStderr: true });
      const path = out.stdout.trim();
      if (out.code !== 0 || path === "") {
        throw new ToolError(
          `tests/ecosystem/build.sh ${tool} failed with exit code ${out.code}: ${
            BUILD_FAILURES[out.code] ?? "see stderr"
          }`,
        );
      }
      return path;
    })();
    pending.catch(() => built.delete(tool));
    built.set(tool, pending);
  }
  return pending;
}

let prometheus: Promise<{ promtool: string; prometheus: string }> | undefined;

/** Paths of promtool and prometheus, installing Debian's package when they are missing. */
export function prometheusTools(): Promise<{ promtool: string; prometheus: string }> {
  prometheus ??= (async () => {
    const out = await run("bash", [`${HERE}prometheus.sh`], { inheritStderr: true });
    const [promtool, server] = out.stdout.trim().split("\n");
    if (out.code !== 0 || !promtool || !server) {
      throw new ToolError(
        `tests/ecosystem/prometheus.sh failed with exit code ${out.code}: promtool and prometheus ` +
          "are missing and could not be installed (see stderr)",
      );
    }
    return { promtool, prometheus: server };
  })();
  prometheus.catch(() => prometheus = undefined);
  return prometheus;
}

/**
 * CRDs of other projects that `deploy/` and `bundle/` instantiate, by the Go module that publishes
 * them (the files are the projects' released CRDs).
 */
export const EXTERNAL_CRDS = [
  {
    module: "github.com/prometheus-operator/prometheus-operator@v0.85.0",
    files: [
      "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
      "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ],
  },
  {
    module: "github.com/cert-manager/cert-manager@v1.18.2",
    files: ["deploy/crds/crd-certificates.yaml", "deploy/crds/crd-issuers.yaml"],
  },
  {
    module: "github.com/operator-framework/api@v0.30.0",
    files: ["crds/operators.coreos.com_clusterserviceversions.yaml"],
  },
] as const;

/** A Kubernetes-shaped document. */
export type Doc = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
};

/**
 * The {@linkcode EXTERNAL_CRDS} as objects, downloaded through the Go module proxy (cached in
 * GOMODCACHE). cert-manager's files are Helm templates whose templating sits in comments and in
 * label values: the labels and annotations are dropped, the schema is untouched.
 */
export async function externalCrds(): Promise<Doc[]> {
  const crds: Doc[] = [];
  for (const { module, files } of EXTERNAL_CRDS) {
    const out = await run("go", ["mod", "download", "-json", module], {
      cwd: HERE,
      env: { GOFLAGS: "-mod=mod" },
    });
    let dir: string | undefined;
    try {
      dir = (JSON.parse(out.stdout) as { Dir?: string }).Dir;
    } catch {
      // reported below
    }
    if (out.code !== 0 || !dir) {
      throw new ToolError(`go mod download ${module} failed (exit ${out.code}): ${out.stdout}${out.stderr}`);
    }
    for (const file of files) {
      for (const doc of parseAllDocuments(await Deno.readTextFile(`${dir}/${file}`))) {
        const crd = doc.toJS() as Doc | null;
        if (!crd || crd.kind !== "CustomResourceDefinition") continue;
        crd.metadata = { name: crd.metadata?.name };
        crds.push(crd);
      }
    }
  }
  return crds;
}
