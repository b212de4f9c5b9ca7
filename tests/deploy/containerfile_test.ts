/**
 * @module
 * The Containerfile compiles with the permissions `deno task run` uses (scoped where the container
 * allows it), builds on the pinned Deno, and runs non-root; its `deno bundle` is code-split so that
 * the entry chunk, and the chunk of the `run` command, load no `node:` module and no npm package
 * (what `quay-bridge run` loads before it has work: docs/runtime.md), with every chunk reached from
 * the entry by a literal import (what `deno compile` embeds); and that bundle, the input of
 * `deno compile`, is a self-contained program that runs `version`, `--help` and `run` (against the test
 * world) with exactly the permissions the Containerfile bakes in.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config.ts";
import { VERSION } from "../../src/version.ts";
import { importGraph } from "../cli/import_graph.ts";
import { startKubeWorld } from "../world/kube/mod.ts";
import {
  bundleCommand,
  bundleLikeContainerfile,
  bundleRunFlags,
  compileEntry,
  compileFlags,
  readContainerfile,
} from "./containerfile.ts";
import { kubectl, ROOT } from "./helpers.ts";

const containerfile = readContainerfile();
const denoJson = JSON.parse(await Deno.readTextFile(ROOT + "deno.json")) as { tasks: Record<string, string> };
const DEFAULTS = parseConfig({ args: ["run"], env: () => undefined });

function permissionFlags(flags: string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const flag of flags) {
    const [name, value] = flag.split("=", 2) as [string, string | undefined];
    if (name.startsWith("--allow-") || name.startsWith("--unstable") || name === "-A") out.set(name, value);
  }
  return out;
}

Deno.test("deno compile embeds the V8 flags of `deno task run` (memory: --optimize-for-size)", () => {
  const runTask = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks.run;
  const v8 = String(runTask).split(/\s+/).filter((w) => w.startsWith("--v8-flags="));
  assert.ok(v8.includes("--v8-flags=--optimize-for-size"), "the run task favours memory over speed");
  for (const flag of v8) {
    assert.ok(compileFlags().includes(flag), `the Containerfile's deno compile lacks ${flag}`);
  }
});

Deno.test("deno compile gets every permission of `deno task run`, scoped to the container's paths", () => {
  const compile = permissionFlags(compileFlags());
  const run = permissionFlags((denoJson.tasks.run ?? "").split(/\s+/));
  assert.ok(run.size >= 3, "deno.json has no run task with permissions");
  for (const [name] of run) assert.ok(compile.has(name), `the Containerfile's deno compile lacks ${name}`);
  for (const forbidden of ["--allow-write", "--allow-run", "--allow-all", "--allow-ffi", "-A"]) {
    assert.ok(!compile.has(forbidden), `deno compile grants ${forbidden}`);
  }
  const readable = (compile.get("--allow-read") ?? "").split(",");
  for (const path of [DEFAULTS.webhookCertDir, "/var/run/secrets", "/tmp"]) {
    assert.ok(readable.includes(path), `--allow-read lacks ${path}`);
  }
  assert.ok(compile.has("--unstable-net"), "SO_REUSEPORT needs --unstable-net");
});

Deno.test("the Containerfile builds on the pinned Deno and runs as 65532 with ENTRYPOINT /quay-bridge run", () => {
  assert.match(
    containerfile,
    new RegExp(`^ARG DENO_VERSION=${Deno.version.deno.replaceAll(".", "\\.")}$`, "m"),
  );
  assert.match(containerfile, /^FROM docker\.io\/denoland\/deno:\$\{DENO_VERSION\} AS build$/m);
  assert.match(containerfile, /deno install --frozen/);
  const stages = containerfile.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2, "two stages");
  const runtime = stages[1] as string;
  assert.match(runtime, /^USER 65532(:65532)?$/m);
  assert.match(runtime, /^ENTRYPOINT \["\/quay-bridge"\]$/m);
  assert.match(runtime, /^CMD \["run"\]$/m);
  assert.match(containerfile, /--output \/quay-bridge /);
  // The image the manifests run is this version.
  assert.match(containerfile, new RegExp(`quay-bridge:${VERSION.replaceAll(".", "\\.")}`));
});

Deno.test(".containerignore lets in exactly what the build stage copies", async () => {
  const ignore = (await Deno.readTextFile(ROOT + ".containerignore")).split("\n").map((l) => l.trim());
  assert.ok(ignore.includes("*"));
  for (const copied of ["deno.json", "deno.lock", "main.ts", "src/"]) {
    assert.ok(ignore.includes(`!${copied}`), copied);
    assert.match(containerfile, new RegExp(`COPY [^\\n]*${copied.replace(".", "\\.")}`));
  }
});

Deno.test("deno bundle splits the code and deno compile compiles the entry chunk", () => {
  const { args, outdir } = bundleCommand();
  assert.ok(args.includes("--code-splitting"), "a single-file bundle hoists every node: import to its top");
  assert.ok(args.includes("--platform=deno"));
  assert.equal(args.at(-1), "main.ts");
  // deno compile finds the chunks by following the entry's imports (the next test).
  assert.equal(compileEntry(), `${outdir}/main.js`);
});

Deno.test("the bundle's entry and run chunks load no node: module or npm package; every chunk is embedded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-bundle-" });
  try {
    const entry = await bundleLikeContainerfile(dir);
    const chunks = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".js")).map((e) => e.name);
    assert.ok(chunks.length > 5, `only ${chunks.join(", ")}`);
    const graph = await importGraph(entry, dir, false);
    // deno compile embeds the module graph of its entry, dynamic imports with a literal specifier
    // included: every chunk must be in it, or the binary fails when it first imports the missing one.
    assert.deepEqual(
      graph.reachable.map((s) => s.slice(s.lastIndexOf("/") + 1)).sort(),
      chunks.sort(),
      "chunks deno compile would not embed",
    );
    assert.deepEqual(graph.external, [], "the entry chunk loads these at start-up");
    const run = /import\("\.\/(run-[A-Z0-9]+\.js)"\)/.exec(await Deno.readTextFile(entry))?.[1];
    assert.ok(run, "the entry chunk has no import() of the run command's chunk");
    const runGraph = await importGraph(`${dir}/${run}`, dir, false);
    assert.ok(runGraph.local.length > 5, `the run chunk reaches only ${runGraph.local.length} chunks`);
    assert.deepEqual(runGraph.external, [], "the run command loads these before it has work");
    // The walk sees node: imports where a chunk has them: the webhook's, loaded when it is on.
    const webhook = chunks.find((c) => c.startsWith("webhook_wiring-"));
    assert.ok(webhook, chunks.join(", "));
    const webhookGraph = await importGraph(`${dir}/${webhook}`, dir, false);
    assert.ok(webhookGraph.external.includes("node:crypto"), webhookGraph.external.join(", "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const deno = Deno.execPath();

/** `deno run` of the bundle with the Containerfile's permissions (plus `extraRead`). */
function runBundle(
  file: string,
  args: string[],
  options: { extraRead?: string[]; env?: Record<string, string> } = {},
) {
  return new Deno.Command(deno, {
    args: ["run", "--no-config", "--cached-only", ...bundleRunFlags(options.extraRead), file, ...args],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: "/nonexistent", ...options.env },
  });
}

Deno.test("deno bundle of main.ts runs version, --help and run with the Containerfile's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-bundle-" });
  const world = await startKubeWorld();
  try {
    const file = await bundleLikeContainerfile(`${dir}/bundle`);
    const decoder = new TextDecoder();
    const version = await runBundle(file, ["version"]).output();
    assert.equal(version.code, 0, decoder.decode(version.stderr));
    assert.equal(decoder.decode(version.stdout), `quay-bridge ${VERSION} (deno ${Deno.version.deno})\n`);
    const help = await runBundle(file, ["--help"]).output();
    assert.equal(help.code, 0, decoder.decode(help.stderr));
    assert.match(decoder.decode(help.stdout), /^quay-bridge — /);
    assert.match(decoder.decode(help.stdout), /--webhook-cert-dir/);

    // `run` against the world: the caches fill, /readyz turns 200, SIGTERM ends it with 0.
    const kubeconfig = await world.writeKubeconfig(`${dir}/kubeconfig`);
    const applied = await kubectl([
      "--kubeconfig",
      kubeconfig,
      "apply",
      "-f",
      "deploy/namespace.yaml",
      "-f",
      "deploy/crds/",
    ]);
    assert.equal(applied.code, 0, applied.stderr);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const opsPort = listener.addr.port;
    listener.close();
    const child = runBundle(file, ["run"], {
      extraRead: [kubeconfig],
      env: {
        KUBECONFIG: kubeconfig,
        DISABLE_WEBHOOK: "",
        QUAY_BRIDGE_LEADER_ELECT: "false",
        QUAY_BRIDGE_OPS_HOST: "127.0.0.1",
        QUAY_BRIDGE_OPS_PORT: String(opsPort),
        NO_PROXY: "127.0.0.1,localhost",
      },
    }).spawn();
    let ready = false;
    const deadline = Date.now() + 30_000;
    while (!ready && Date.now() < deadline) {
      try {
        const r = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
        await r.body?.cancel();
        ready = r.status === 200;
      } catch {
        // not listening yet
      }
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const metrics = ready ? await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text() : "";
    child.kill("SIGTERM");
    const status = await child.output();
    const stderr = decoder.decode(status.stderr) + decoder.decode(status.stdout);
    assert.ok(ready, `never ready:\n${stderr}`);
    assert.match(metrics, /quay_bridge_kube_requests_total/);
    assert.equal(status.code, 0, stderr);
    assert.doesNotMatch(stderr, /NotCapable|Requires .* access/);
  } finally {
    await world.close();
    await Deno.remove(dir, { recursive: true });
  }
});
