/**
 * @module
 * The static import graph of a module as Deno resolves it (`deno info --json`, the module graph that
 * `deno run` loads and `deno compile` embeds): which local modules load with it and which modules from
 * outside the file system (`node:`, `npm:`, remote) come along before any `import()` runs.
 */
import assert from "node:assert/strict";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

/** The graph of `entry`: all local modules (static and dynamic) and the static closure. */
export interface ImportGraph {
  /** Local modules reached by static imports from the entry (the entry included). */
  readonly local: string[];
  /** Non-file modules reached by static imports, sorted. */
  readonly external: string[];
  /** Every local module reached by static or dynamic imports with a literal specifier. */
  readonly reachable: string[];
}

/**
 * Walks `entry` (a path, resolved against `cwd`); `config` is the deno.json to resolve bare
 * specifiers with, or `false` for `--no-config` (a bundle, which has none).
 */
export async function importGraph(entry: string, cwd: string, config: string | false): Promise<ImportGraph> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...(config === false ? ["--no-config"] : ["--config", config]), entry],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects?: Record<string, string>;
  };
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const walk = (withDynamic: boolean) => {
    const seen = new Set<string>();
    const stack = [...info.roots];
    while (stack.length) {
      const specifier = stack.pop() as string;
      const resolved = info.redirects?.[specifier] ?? specifier;
      if (seen.has(resolved)) continue;
      seen.add(resolved);
      if (!resolved.startsWith("file:")) continue;
      for (const dependency of modules.get(resolved)?.dependencies ?? []) {
        const next = dependency.code?.specifier;
        if (next && (withDynamic || !dependency.isDynamic)) stack.push(next);
      }
    }
    return [...seen];
  };
  const statics = walk(false);
  return {
    local: statics.filter((s) => s.startsWith("file:")),
    external: statics.filter((s) => !s.startsWith("file:")).sort(),
    reachable: walk(true).filter((s) => s.startsWith("file:")),
  };
}
