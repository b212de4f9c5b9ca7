/**
 * @module
 * Shared helpers of the `deploy/` and `bundle/` tests: file walking, YAML loading and
 * `kubectl kustomize`.
 */
import { parseAllDocuments } from "yaml";

/** A Kubernetes-shaped document. */
export type Doc = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
};

/** The repository root (a path ending in `/`). */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** The kustomizations a user can apply with `-k`. */
export const KUSTOMIZATIONS = [
  "deploy",
  "deploy/webhook/service-ca",
  "deploy/webhook/cert-manager",
  "deploy/webhook/self-managed",
  "deploy/webhook/manual",
  "deploy/monitoring",
] as const;

/** Every file below `dir` (relative to the root), sorted. */
export async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(ROOT + dir)) {
    const path = `${dir}/${entry.name}`;
    const info = await Deno.stat(ROOT + path);
    if (info.isDirectory) out.push(...await walk(path));
    else out.push(path);
  }
  return out.sort();
}

/** Parses every YAML document of a text; throws on the first syntax error. */
export function parseYaml(text: string, where: string): Doc[] {
  const docs = parseAllDocuments(text);
  const out: Doc[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors[0]?.message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value as Doc);
  }
  return out;
}

/** Reads a YAML file (relative to the root). */
export async function readYaml(path: string): Promise<Doc[]> {
  return parseYaml(await Deno.readTextFile(ROOT + path), path);
}

/** Runs kubectl with `args`; returns its exit code and output. */
export async function kubectl(
  args: string[],
  options: { stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command("kubectl", {
    args,
    cwd: ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

const built = new Map<string, Promise<string>>();

/** `kubectl kustomize <dir>` (memoized per test file); throws when it fails. */
export function kustomize(dir: string): Promise<string> {
  let result = built.get(dir);
  if (!result) {
    result = kubectl(["kustomize", dir]).then((r) => {
      if (r.code !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
      return r.stdout;
    });
    built.set(dir, result);
  }
  return result;
}

/** The documents `kubectl kustomize <dir>` renders. */
export async function kustomizeDocs(dir: string): Promise<Doc[]> {
  return parseYaml(await kustomize(dir), `kustomize ${dir}`);
}

/** The one document of `kind` (and `name`, when given); throws when not exactly one. */
export function only(docs: Doc[], kind: string, name?: string): Doc {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  }
  return found[0] as Doc;
}
