/**
 * @module
 * quay-bridge side by side with the upstream Go operator, one after the other, each on a fresh real
 * kube-apiserver (`tests/cluster`) and a fresh test-world Quay (over HTTPS): Quay calls per new
 * namespace (0 and R ImageStreams), per ImageStream update and per new ImageStream, time until a
 * burst of new namespaces is converged, resident memory (idle, after each burst, peak during it)
 * and Quay calls while nothing changes.
 *
 * "Converged" is what both operators promise for a namespace: its three service accounts link a
 * `<sa>-quay-openshift` pull secret and Quay got a repository creation per ImageStream. The
 * benchmark watches the ServiceAccounts through the API server (one watch, no polling) and reads
 * the Quay world's request counts in process, so measuring adds no Quay call.
 *
 * At the end each operator is restarted with nothing changed (`startup.ts`: Quay calls and time to
 * ready) and its admission webhook loaded (`webhook_compare.ts`).
 *
 * `deno run -A bench/compare.ts [--sizes=100,1000] [--only=quay-bridge]` runs it alone.
 */
import "../src/quiet_deprecations.ts";
import { KubeClient, tokenConnection } from "../src/kube/client.ts";
import { IMAGE_STREAMS, NAMESPACES, SERVICE_ACCOUNTS } from "../src/kube/resources.ts";
import { startRealCluster } from "../tests/cluster/mod.ts";
import { installCrds, installIntegration, jsonClient } from "../tests/walkthrough/setup.ts";
import { startQuayWorld } from "../tests/world/quay/mod.ts";
import {
  ensureUpstreamBinary,
  type Peer,
  type PeerName,
  rssMiB,
  rssSampler,
  startQuayBridge,
  startUpstream,
  upstreamSource,
} from "./peers.ts";
import { measureRestart } from "./startup.ts";
import { measureWebhook, prepareWebhook, type WebhookLoadOptions } from "./webhook_compare.ts";

/** Options of {@linkcode benchCompare}. */
export interface CompareOptions {
  /** Bursts of new namespaces, one after the other on the same cluster. @default [100, 1000] */
  sizes?: readonly number[];
  /** ImageStreams per namespace in the bursts and the second probe. @default 3 */
  imageStreams?: number;
  /** Length of the idle window at the end. @default 60 */
  idleSeconds?: number;
  /** Quay is "quiet" when no call came for this long. @default 2000 */
  quietMs?: number;
  /** A burst that has not converged after `60 s + size × this` is stopped and reported. @default 500 */
  burstTimeoutMsPerNamespace?: number;
  /** The webhook load after the restart. @default {} (see `webhook_compare.ts`) */
  webhook?: WebhookLoadOptions;
  /** Quay calls after the restart are counted for at least this long. @default 35000 (`startup.ts`) */
  restartWindowMs?: number;
  /** Which operators. @default ["quay-bridge", "upstream"] */
  peers?: readonly PeerName[];
  /** Tarball or directory of the upstream source (see `peers.ts`). */
  upstreamSource?: string | undefined;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Figures of one operator; `null` where it could not be measured. */
export type Figures = Record<string, number | null>;

/** The comparison: each operator's figures and quay-bridge ÷ upstream per figure. */
export interface Comparison {
  readonly sizes: readonly number[];
  readonly imageStreams: number;
  readonly idleSeconds: number;
  readonly peers: Partial<Record<PeerName, Figures>>;
  readonly ratios: Record<string, number | null>;
}

const CLUSTER_ID = "openshift";
const SERVICE_ACCOUNT_NAMES = ["builder", "default", "deployer"] as const;
/** Namespaces neither operator should manage: only the benchmark's own are compared. */
const DENYLIST = ["default", "quay-bridge", "kube-system", "kube-public", "kube-node-lease"];
const CREATE_CONCURRENCY = 16;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Counts the benchmark's service accounts that link their Quay pull secret, from one watch. */
class LinkTracker {
  readonly #linked = new Set<string>();
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;

  constructor(kube: KubeClient) {
    this.#done = this.#run(kube);
  }

  async #run(kube: KubeClient): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        for await (
          const event of kube.watch<
            { metadata: { name: string; namespace?: string }; imagePullSecrets?: { name: string }[] }
          >(SERVICE_ACCOUNTS, {
            signal: this.#abort.signal,
            timeoutSeconds: 3600,
            allowWatchBookmarks: false,
          })
        ) {
          const sa = event.object;
          const ns = sa.metadata?.namespace ?? "";
          if (!ns.startsWith("bench-")) continue;
          const key = `${ns}/${sa.metadata.name}`;
          const wanted = `${sa.metadata.name}-quay-${CLUSTER_ID}`;
          if (event.type !== "DELETED" && sa.imagePullSecrets?.some((s) => s.name === wanted)) {
            this.#linked.add(key);
          } else this.#linked.delete(key);
        }
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        if (!(error instanceof Error)) throw error;
        await sleep(200);
      }
    }
  }

  /** Linked service accounts in namespaces whose name starts with `prefix`. */
  linked(prefix: string): number {
    let n = 0;
    for (const key of this.#linked) if (key.startsWith(prefix)) n++;
    return n;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  }));
}

/** Creates projects as OpenShift hands them over: annotated, with their three service accounts. */
async function createNamespaces(kube: KubeClient, names: readonly string[], imageStreams: number) {
  await pool(names, CREATE_CONCURRENCY, async (name) => {
    await kube.create(NAMESPACES, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, annotations: { "openshift.io/sa.scc.mcs": "s0:c1,c2" } },
    });
    await Promise.all([
      ...SERVICE_ACCOUNT_NAMES.map((sa) =>
        kube.create(SERVICE_ACCOUNTS, {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: sa, namespace: name },
        })
      ),
      ...Array.from({ length: imageStreams }, (_, j) => createImageStream(kube, name, `app-${j}`)),
    ]);
  });
}

function createImageStream(kube: KubeClient, namespace: string, name: string) {
  return kube.create(IMAGE_STREAMS, {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStream",
    metadata: { name, namespace },
    spec: { lookupPolicy: { local: false } },
  });
}

/** One operator on its own cluster and Quay. */
async function runPeer(
  name: PeerName,
  upstreamBinary: string | undefined,
  options: Required<Omit<CompareOptions, "peers" | "upstreamSource" | "log">>,
  log: (line: string) => void,
): Promise<Figures> {
  const figures: Figures = {};
  const R = options.imageStreams;
  await using cluster = await startRealCluster({ controllers: false });
  const quay = await startQuayWorld();
  const kube = new KubeClient(tokenConnection(cluster.url, cluster.caPem, cluster.adminToken));
  const api = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  const tracker = new LinkTracker(kube);
  let peer: Peer | undefined;
  try {
    await installCrds(api);
    await installIntegration(api, {
      operatorNamespace: "quay-bridge",
      quayUrl: quay.url,
      quayToken: quay.adminToken,
      quayCaPem: quay.caPem,
      spec: { clusterID: CLUSTER_ID, denylistNamespaces: DENYLIST },
    });
    const kubeconfig = `${cluster.dir}/bench.kubeconfig`;
    await cluster.writeKubeconfig(kubeconfig, { token: cluster.adminToken, namespace: "quay-bridge" });
    peer = name === "upstream"
      ? startUpstream(upstreamBinary as string, kubeconfig)
      : await startQuayBridge(kubeconfig);
    const running = peer;
    const total = () => Object.values(quay.calls()).reduce((a, n) => a + n, 0);
    const repoPosts = () => quay.calls()["POST /api/v1/repository"] ?? 0;
    const alive = () => {
      const status = running.exited();
      if (status) throw new Error(`${name} exited with code ${status.code}:\n${running.tail()}`);
    };
    /** Waits until Quay got no call for `quietMs` (at most `maxMs`). */
    const quiet = async (maxMs = 60_000) => {
      const deadline = Date.now() + maxMs;
      let last = total();
      let since = Date.now();
      while (Date.now() < deadline) {
        await sleep(100);
        alive();
        const now = total();
        if (now !== last) {
          last = now;
          since = Date.now();
        } else if (Date.now() - since >= options.quietMs) return;
      }
    };
    /** Waits until `prefix`'s `namespaces` are converged; the time it took, or null on timeout. */
    const converge = async (prefix: string, namespaces: number, repos: number, timeoutMs: number) => {
      const started = performance.now();
      const deadline = Date.now() + timeoutMs;
      while (tracker.linked(prefix) < namespaces * 3 || repoPosts() < repos) {
        if (Date.now() > deadline) return null;
        alive();
        await sleep(50);
      }
      return performance.now() - started;
    };

    // Start-up and idle with nothing to manage.
    await sleep(3000);
    await quiet();
    figures.rss_idle_mib = (await rssMiB(running.pid)) ?? null;
    figures.heap_idle_mib = (await running.heapMiB()) ?? null;
    figures.quay_calls_startup = total();
    log(`${name}: idle ${figures.rss_idle_mib} MiB, ${figures.quay_calls_startup} Quay calls at start-up`);

    // Calls per new namespace, with none and with R ImageStreams.
    for (const [probe, streams] of [["bench-p0", 0], ["bench-p3", R]] as const) {
      await quiet();
      quay.resetCalls();
      await createNamespaces(kube, [probe], streams);
      const ms = await converge(`${probe}/`, 1, streams, 60_000);
      await quiet();
      figures[`quay_calls_new_namespace_${streams}is`] = ms === null ? null : total();
    }
    // An ImageStream update (a label) and a new ImageStream in a synced namespace.
    await quiet();
    quay.resetCalls();
    await kube.patch(IMAGE_STREAMS, "app-0", { metadata: { labels: { "bench/touched": "1" } } }, {
      patchType: "merge",
      namespace: "bench-p3",
    });
    await sleep(options.quietMs);
    await quiet();
    figures.quay_calls_imagestream_update = total();
    quay.resetCalls();
    await createImageStream(kube, "bench-p3", `app-${R}`);
    const added = await converge("bench-p3/", 1, 1, 60_000);
    await quiet();
    figures.quay_calls_new_imagestream = added === null ? null : total();
    log(
      `${name}: calls per new namespace 0/${R} ImageStreams ${figures.quay_calls_new_namespace_0is}/` +
        `${
          figures[`quay_calls_new_namespace_${R}is`]
        }, per update ${figures.quay_calls_imagestream_update}, ` +
        `per new ImageStream ${figures.quay_calls_new_imagestream}`,
    );

    // Bursts of new namespaces.
    let managed = 2;
    for (const size of options.sizes) {
      await quiet();
      quay.resetCalls();
      const prefix = `bench-b${size}-`;
      const names = Array.from({ length: size }, (_, i) => `${prefix}${i}`);
      const sampler = rssSampler(running.pid);
      const started = performance.now();
      const creating = createNamespaces(kube, names, R);
      const timeoutMs = 60_000 + size * options.burstTimeoutMsPerNamespace;
      const deadline = Date.now() + timeoutMs;
      await creating;
      // Creating the objects takes time of its own on two shared cores: the floor of convergence.
      figures[`create_s_${size}`] = round((performance.now() - started) / 1000, 2);
      const ms = await converge(prefix, size, size * R, Math.max(0, deadline - Date.now()));
      const elapsed = performance.now() - started;
      figures[`converge_s_${size}`] = ms === null ? null : round(elapsed / 1000, 2);
      // From the last object created to converged: the operator's own lag behind the burst.
      figures[`lag_s_${size}`] = ms === null ? null : round(ms / 1000, 2);
      figures[`converged_namespaces_${size}`] = Math.floor(tracker.linked(prefix) / 3);
      figures[`quay_calls_per_namespace_burst_${size}`] = round(total() / size, 2);
      await quiet();
      figures[`rss_peak_burst_${size}_mib`] = await sampler.stop();
      figures[`rss_after_${size}_mib`] = (await rssMiB(running.pid)) ?? null;
      figures[`heap_after_${size}_mib`] = (await running.heapMiB()) ?? null;
      managed += size;
      log(
        `${name}: ${size} new namespaces ${
          ms === null
            ? `NOT converged after ${round(elapsed / 1000)} s`
            : `converged in ${round(elapsed / 1000)} s`
        }, RSS peak ${figures[`rss_peak_burst_${size}_mib`]} MiB, after ${
          figures[`rss_after_${size}_mib`]
        } MiB`,
      );
    }

    // Nothing changes: what does it ask Quay?
    await quiet();
    quay.resetCalls();
    await sleep(options.idleSeconds * 1000);
    alive();
    const idleCalls = total();
    figures.managed_namespaces = managed;
    figures.quay_calls_idle_window = idleCalls;
    // Which routes the idle calls went to (an audit-log catch-up after a burst, or per-namespace re-reads).
    const idleRoutes = Object.entries(quay.calls()).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    log(`${name}: idle calls by route: ${idleRoutes.map(([r, n]) => `${r} ${n}`).join(", ") || "none"}`);
    figures.quay_calls_idle_per_s = round(idleCalls / options.idleSeconds, 3);
    figures.quay_calls_idle_per_namespace_per_10min = round(
      idleCalls / managed * 600 / options.idleSeconds,
      3,
    );
    figures.rss_end_mib = (await rssMiB(running.pid)) ?? null;
    log(`${name}: ${idleCalls} Quay calls in ${options.idleSeconds} s idle with ${managed} namespaces`);

    // Restarted with nothing changed, its webhook on; then Builds in a synced namespace.
    const webhook = await prepareWebhook(name, cluster.dir);
    const restart = await measureRestart({
      name,
      peer: running,
      start: (w) =>
        name === "upstream"
          ? startUpstream(upstreamBinary as string, kubeconfig, w)
          : startQuayBridge(kubeconfig, w),
      webhook,
      quayCalls: total,
      resetQuayCalls: () => quay.resetCalls(),
      quietMs: options.quietMs,
      windowMs: options.restartWindowMs,
    }, (restarted) => (peer = restarted));
    Object.assign(figures, restart.figures);
    log(
      `${name}: restarted with ${managed} synced namespaces: ${restart.figures.restart_quay_calls} Quay calls, ready in ${restart.figures.restart_ready_s} s`,
    );
    Object.assign(figures, await measureWebhook(webhook, "bench-p3", options.webhook));
    log(
      `${name}: webhook ${figures.webhook_best_rps}/s, p99 ${figures.webhook_best_p99_ms} ms at ${figures.webhook_best_concurrency} connections`,
    );
    return figures;
  } finally {
    // A step that hangs must not hold the whole benchmark: each gets a bounded time, and says so.
    const step = async (what: string, fn: () => Promise<void> | void) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) =>
        timer = setTimeout(() => {
          log(`${name}: ${what} did not finish within 20 s; going on`);
          resolve();
        }, 20_000)
      );
      await Promise.race([Promise.resolve().then(fn), late]);
      clearTimeout(timer);
    };
    const stopping = performance.now();
    await step("stopping the operator", async () => {
      await peer?.stop();
      log(`${name}: stopped in ${round((performance.now() - stopping) / 1000)} s`);
    });
    await step("closing the ServiceAccount watch", () => tracker.close());
    kube.close();
    api.close();
    await step("closing the Quay world", () => quay.close());
  }
}

/** quay-bridge ÷ upstream for every figure both have (null where upstream's is 0 or missing). */
export function ratios(
  ours: Figures | undefined,
  theirs: Figures | undefined,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  if (!ours || !theirs) return out;
  for (const [key, value] of Object.entries(ours)) {
    const other = theirs[key];
    if (key.startsWith("converged_namespaces") || key === "managed_namespaces") continue;
    out[key] = value === null || other === null || other === undefined || other === 0
      ? null
      : round(value / other, 3);
  }
  return out;
}

/** Runs the comparison. */
export async function benchCompare(options: CompareOptions = {}): Promise<Comparison> {
  const log = options.log ?? (() => {});
  const peers = options.peers ?? ["quay-bridge", "upstream"];
  const settings = {
    sizes: options.sizes ?? [100, 1000],
    imageStreams: options.imageStreams ?? 3,
    idleSeconds: options.idleSeconds ?? 60,
    quietMs: options.quietMs ?? 2000,
    burstTimeoutMsPerNamespace: options.burstTimeoutMsPerNamespace ?? 500,
    webhook: options.webhook ?? {},
    restartWindowMs: options.restartWindowMs ?? 35_000,
  };
  // Build first, so a missing source fails before any cluster starts.
  const upstreamBinary = peers.includes("upstream")
    ? await ensureUpstreamBinary(options.upstreamSource)
    : undefined;
  const results: Partial<Record<PeerName, Figures>> = {};
  for (const name of peers) {
    log(`${name}: starting a fresh cluster and Quay`);
    results[name] = await runPeer(name, upstreamBinary, settings, log);
  }
  return {
    sizes: settings.sizes,
    imageStreams: settings.imageStreams,
    idleSeconds: settings.idleSeconds,
    peers: results,
    ratios: ratios(results["quay-bridge"], results.upstream),
  };
}

if (import.meta.main) {
  const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const result = await benchCompare({
    sizes: arg("sizes")?.split(",").map(Number),
    idleSeconds: arg("idle") ? Number(arg("idle")) : undefined,
    peers: arg("only")?.split(",") as PeerName[] | undefined,
    upstreamSource: upstreamSource(arg("upstream-src")),
    log: (line) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n")),
  });
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result, null, 2) + "\n"));
}
