/**
 * What `quay-bridge run` loads before it has work: no `node:` module and no npm package on the static
 * import graph of `main.ts` and of the `run` command (`src/cli/run.ts`, which `main.ts` imports when
 * the command is `run`). Any `node:` module brings Deno's Node compatibility layer into the process
 * (about 10 MiB resident), and any npm package Node's globals for it (about 2 MiB): the idle operator's
 * memory (docs/runtime.md). Features that need them load them with `import()` when used: the
 * webhook, the insecure transport, exec credential plugins, the kubeconfig YAML parser. The container
 * image's code-split bundle keeps them out of its entry chunk too (tests/deploy/containerfile_test.ts).
 */
import assert from "node:assert/strict";
import { importGraph } from "./import_graph.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function staticGraph(entry: string): Promise<{ local: number; external: string[] }> {
  const graph = await importGraph(entry, ROOT, ROOT + "deno.json");
  return { local: graph.local.length, external: graph.external };
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
