/**
 * @module
 * The Containerfile compiles with the permissions `deno task run` uses (scoped where the container
 * allows it), builds on the pinned Deno, and runs non-root; and `deno bundle` of main.ts, the input
 * of `deno compile`, is a self-contained program that runs `version`, `--help` and `run` (against
 * the test world) with exactly the permissions the Containerfile bakes in.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config.ts";
import { VERSION } from "../../src/version.ts";
import { startKubeWorld } from "../world/kube/mod.ts";
import { kubectl, ROOT } from "./helpers.ts";

const containerfile = await Deno.readTextFile(ROOT + "Containerfile");
const denoJson = JSON.parse(await Deno.readTextFile(ROOT + "deno.json")) as { tasks: Record<string, string> };
const DEFAULTS = parseConfig({ args: ["run"], env: () => undefined });

/** The flags of the `deno compile` command in the Containerfile (continuation lines joined). */
function compileFlags(): string[] {
  const joined = containerfile.replace(/\\\n/g, " ");
  const m = /deno compile ([^\n&]*)/.exec(joined);
  assert.ok(m, "no deno compile in the Containerfile");
  return (m[1] as string).split(/\s+/).filter((w) => w.startsWith("--"));
}

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

const deno = Deno.execPath();

async function bundle(dir: string): Promise<string> {
  const out = `${dir}/quay-bridge.js`;
  const result = await new Deno.Command(deno, {
    args: ["bundle", "--quiet", "--platform=deno", "-o", out, ROOT + "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  return out;
}

/** `deno run` of the bundle with the Containerfile's permissions (plus `extraRead`). */
function runBundle(
  file: string,
  args: string[],
  options: { extraRead?: string[]; env?: Record<string, string> } = {},
) {
  const flags = compileFlags().filter((f) =>
    !["--no-config", "--no-check"].includes(f) && !f.startsWith("--output")
  )
    .map((f) =>
      f.startsWith("--allow-read=") && options.extraRead ? `${f},${options.extraRead.join(",")}` : f
    );
  return new Deno.Command(deno, {
    args: ["run", "--no-config", "--cached-only", ...flags, file, ...args],
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
    const file = await bundle(dir);
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
