/**
 * @module
 * Idle memory of quay-bridge alone, measured as `compare.ts` measures `rss_idle_mib`: the operator
 * started as `deno task run` starts it (`peers.ts`), webhook off, on a fresh real kube-apiserver
 * with one QuayIntegration and a fresh test-world Quay; three seconds, then Quay quiet for two, then
 * the resident set (`VmRSS`, split into anonymous and file-backed pages) and V8's heap in use (the
 * metrics endpoint). Several runs, each on its own cluster, and their medians: on two shared cores
 * one run is noise.
 *
 * `deno run -A bench/idle.ts [--runs=5]` prints one line per run and the medians on stderr, the
 * figures as JSON on stdout. It is the quick loop for memory work; the side-by-side `deno task bench`
 * remains the figure of record.
 *
 * `--bundle` runs instead what the container image compiles: `deno bundle` as the Containerfile runs
 * it, its entry run by `deno run` with the flags the Containerfile's `deno compile` bakes in (plus read
 * access to the benchmark's kubeconfig). `--bundle=<file.js>` runs that bundle with those flags.
 */
import "../src/quiet_deprecations.ts";
import { startRealCluster } from "../tests/cluster/mod.ts";
import { installCrds, installIntegration, jsonClient } from "../tests/walkthrough/setup.ts";
import { startQuayWorld } from "../tests/world/quay/mod.ts";
import { bundleLikeContainerfile, bundleRunFlags } from "../tests/deploy/containerfile.ts";
import { type PeerProgram, startQuayBridge } from "./peers.ts";

/** One run's figures, MiB. */
export interface IdleFigures {
  rss: number;
  anon: number;
  file: number;
  heap: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `VmRSS`, `RssAnon` and `RssFile` of a process in MiB (read by grep: see `peers.ts`). */
async function memory(pid: number): Promise<Omit<IdleFigures, "heap"> | undefined> {
  const output = await new Deno.Command("grep", {
    args: ["-E", "^(VmRSS|RssAnon|RssFile):", `/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!output.success) return undefined;
  const text = new TextDecoder().decode(output.stdout);
  const mib = (field: string) =>
    Math.round(Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN) / 1024 * 10) / 10;
  return { rss: mib("VmRSS"), anon: mib("RssAnon"), file: mib("RssFile") };
}

/**
 * One run on a fresh cluster and Quay; `bundle` runs that bundle entry as the compiled binary runs
 * instead of `deno task run`.
 */
export async function idleOnce(bundle?: string): Promise<IdleFigures> {
  await using cluster = await startRealCluster({ controllers: false });
  const quay = await startQuayWorld();
  const api = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  try {
    await installCrds(api);
    await installIntegration(api, {
      operatorNamespace: "quay-bridge",
      quayUrl: quay.url,
      quayToken: quay.adminToken,
      quayCaPem: quay.caPem,
      spec: { clusterID: "openshift", denylistNamespaces: ["default", "quay-bridge", "kube-system"] },
    });
    const kubeconfig = `${cluster.dir}/bench.kubeconfig`;
    await cluster.writeKubeconfig(kubeconfig, { token: cluster.adminToken, namespace: "quay-bridge" });
    const program: PeerProgram | undefined = bundle
      ? { entry: bundle, flags: bundleRunFlags([kubeconfig]) }
      : undefined;
    const peer = await startQuayBridge(kubeconfig, undefined, program);
    try {
      const total = () => Object.values(quay.calls()).reduce((a, n) => a + n, 0);
      await sleep(3000);
      let last = total();
      let since = Date.now();
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && Date.now() - since < 2000) {
        await sleep(100);
        const status = peer.exited();
        if (status) throw new Error(`quay-bridge exited with code ${status.code}:\n${peer.tail()}`);
        if (total() !== last) [last, since] = [total(), Date.now()];
      }
      const rss = await memory(peer.pid);
      if (!rss) throw new Error(`quay-bridge is gone:\n${peer.tail()}`);
      return { ...rss, heap: (await peer.heapMiB()) ?? null };
    } finally {
      await peer.stop();
    }
  } finally {
    api.close();
    await quay.close();
  }
}

/** The median of the numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const value = sorted.length % 2
    ? sorted[mid] as number
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return Math.round(value * 10) / 10;
}

if (import.meta.main) {
  const runs = Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 5);
  const say = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  const bundleArg = Deno.args.find((a) => a === "--bundle" || a.startsWith("--bundle="));
  let bundle: string | undefined;
  let bundleDir: string | undefined;
  if (bundleArg === "--bundle") {
    bundleDir = await Deno.makeTempDir({ prefix: "quay-bridge-idle-" });
    bundle = await bundleLikeContainerfile(bundleDir);
    say(`bundled as the Containerfile does: ${bundle}`);
  } else if (bundleArg) {
    bundle = bundleArg.slice("--bundle=".length);
  }
  const all: IdleFigures[] = [];
  for (let i = 0; i < runs; i++) {
    const figures = await idleOnce(bundle);
    all.push(figures);
    say(
      `run ${
        i + 1
      }: rss ${figures.rss} (anon ${figures.anon}, file ${figures.file}) heap ${figures.heap} MiB`,
    );
  }
  const medians = {
    rss_idle_mib: median(all.map((f) => f.rss)),
    rss_anon_mib: median(all.map((f) => f.anon)),
    rss_file_mib: median(all.map((f) => f.file)),
    heap_idle_mib: median(all.flatMap((f) => f.heap === null ? [] : [f.heap])),
  };
  say(
    `median of ${runs}: rss ${medians.rss_idle_mib} (anon ${medians.rss_anon_mib}, file ${medians.rss_file_mib}) ` +
      `heap ${medians.heap_idle_mib} MiB`,
  );
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify({ runs: all, medians }) + "\n"));
  if (bundleDir) await Deno.remove(bundleDir, { recursive: true });
}
