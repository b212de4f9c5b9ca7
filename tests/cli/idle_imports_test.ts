/**
 * What `quay-bridge run` loads before it has work: no `node:` module and no npm package on the static
 * import graph of `main.ts` and of the `run` command (`src/cli/run.ts`, which `main.ts` imports when
 * the command is `run`). Any `node:` module brings Deno's Node compatibility layer into the process
 * (about 10 MiB resident), and any npm package Node's globals for it (about 2 MiB): the idle operator's
 * memory (docs/runtime.md). Features that need them load them with `import()` when used: the
 * webhook, the insecure transport, exec credential plugins, the kubeconfig YAML parser.
 */
import assert from "node:assert/strict";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

async function staticGraph(entry: string): Promise<{ local: number; external: string[] }> {
  const root = new URL("../../", import.meta.url);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", new URL("deno.json", root).pathname, entry],
    cwd: root.pathname,
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
  const seen = new Set<string>();
  const external = new Set<string>();
  const stack = [...info.roots];
  while (stack.length) {
    const specifier = stack.pop() as string;
    const resolved = info.redirects?.[specifier] ?? specifier;
    if (seen.has(resolved)) continue;
    seen.add(resolved);
    if (!resolved.startsWith("file:")) {
      external.add(resolved);
      continue;
    }
    for (const dependency of modules.get(resolved)?.dependencies ?? []) {
      const next = dependency.code?.specifier;
      if (next && !dependency.isDynamic) stack.push(next);
    }
  }
  return { local: [...seen].filter((s) => s.startsWith("file:")).length, external: [...external].sort() };
}

Deno.test("the run command's static imports hold no node: module and no npm package", async () => {
  for (const entry of ["main.ts", "src/cli/run.ts"]) {
    const graph = await staticGraph(entry);
    // A graph of one module would mean the walk found no edges, not that the imports are clean.
    assert.ok(graph.local > 5, `${entry}: only ${graph.local} modules found`);
    assert.deepEqual(graph.external, [], `${entry} imports these statically`);
  }
});

Deno.test("the walk sees node: and npm: imports where they are static", async () => {
  // The webhook wiring imports node:crypto (certificates) and hono statically: loaded only when on.
  const graph = await staticGraph("src/cli/webhook_wiring.ts");
  assert.ok(graph.external.some((s) => s.startsWith("node:")), graph.external.join(", "));
  assert.ok(graph.external.some((s) => s.startsWith("npm:")), graph.external.join(", "));
});
