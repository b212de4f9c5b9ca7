/**
 * @module
 * quay-bridge side by side with the upstream Go operator, one after the other, each on a fresh real
 * kube-apiserver (`tests/cluster`) and a Quay (`quay_target.ts`: a fresh test-world Quay over HTTPS, or
 * the shared real Quay through a counting proxy, its organizations unique to the run and deleted
 * afterwards): Quay calls per new namespace (0 and R ImageStreams), per ImageStream update and per
 * new ImageStream, time until a burst of new namespaces is converged, resident memory (idle, after
 * each burst, peak during it) and Quay calls while nothing changes.
 *
 * "Converged" is what both operators promise for a namespace: its three service accounts link a
 * `<sa>-quay-<clusterID>` pull secret and Quay got a repository creation per ImageStream. The
 * benchmark watches the ServiceAccounts through the API server (one watch, no polling) and counts
 * Quay's calls in process, so measuring adds no Quay call. The calls per new namespace, per update
 * and per namespace in a burst leave out quay-bridge's audit-log polls (`PeerWorld.syncCalls`: one
 * every `--audit-interval` whatever happens); the idle window and the restart count every call.
 *
 * Each burst has a time limit (`timeLimitMs`, by default 60 s + 0.5 s per namespace, 10 s on the real
 * Quay, at most 15 min):
 * an operator still converging then is stopped being waited for, and the figures say so
 * (`converge_limit_s_<n>`, how many namespaces converged by then and the time per converged
 * namespace); its time to converged is at least the limit, so the ratio of times is a bound
 * (`Comparison.bounds`).
 *
 * At the end each operator is restarted with nothing changed (`startup.ts`: Quay calls and time to
 * ready) and its admission webhook loaded (`webhook_compare.ts`).
 *
 * `deno run -A bench/compare.ts [--sizes=100,1000] [--only=quay-bridge] [--quay=real]` runs it alone.
 */
import "../src/quiet_deprecations.ts";
import { IMAGE_STREAMS } from "../src/kube/resources.ts";
import { ensureUpstreamBinary, type PeerName, rssMiB, rssSampler, upstreamSource } from "./peers.ts";
import { createImageStream, createNamespaces, round, sleep, startPeerWorld } from "./peer_world.ts";
import type { QuayKind } from "./quay_target.ts";
import { cpuMeter, pidsWithArgument } from "./cpu.ts";
import { diffCounts, scrapeRequestCounts, writes } from "./kube_requests.ts";
import { parseDuration } from "./duration.ts";
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
  /**
   * How long each operator is waited for per burst, from the burst's start; an operator not converged
   * by then is reported as stopped at the limit. @default {@linkcode defaultTimeLimitMs}
   */
  timeLimitMs?: number | undefined;
  /** Which Quay. @default "world" */
  quay?: QuayKind;
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
  /** Which Quay the operators ran against. */
  readonly quay: QuayKind;
  readonly sizes: readonly number[];
  readonly imageStreams: number;
  readonly idleSeconds: number;
  /** The time limit of each burst, seconds, by size. */
  readonly timeLimitS: Record<string, number>;
  readonly peers: Partial<Record<PeerName, Figures>>;
  readonly ratios: Record<string, number | null>;
  /**
   * Ratios that are bounds, not values: `"<="` where upstream was stopped at the time limit (the true
   * ratio is at most the one given), `">="` where quay-bridge was.
   */
  readonly bounds: Record<string, "<=" | ">=">;
}

/**
 * The default time limit of a burst of `size` namespaces: 60 s plus 0.5 s per namespace on the test
 * world's Quay, 10 s on the real one (a Python server on shared cores: upstream took about 5 s a
 * namespace there), at most 15 min.
 */
export function defaultTimeLimitMs(size: number, quay: QuayKind = "world"): number {
  return Math.min(60_000 + size * (quay === "real" ? 10_000 : 500), 15 * 60_000);
}

interface Settings {
  sizes: readonly number[];
  imageStreams: number;
  idleSeconds: number;
  quietMs: number;
  timeLimitMs: number | undefined;
  quay: QuayKind;
  webhook: WebhookLoadOptions;
  restartWindowMs: number;
}

/** One operator on its own cluster and Quay. */
async function runPeer(
  name: PeerName,
  upstreamBinary: string | undefined,
  options: Settings,
  log: (line: string) => void,
): Promise<Figures> {
  const figures: Figures = {};
  const R = options.imageStreams;
  const world = await startPeerWorld(name, options.quay, upstreamBinary, log);
  const { kube, quay, tracker } = world;
  const create = (names: string[], streams: number) => {
    for (const n of names) world.namespaces.add(n);
    return createNamespaces(kube, names, streams);
  };
  const quiet = (maxMs?: number) => world.quiet(options.quietMs, maxMs);
  try {
    const running = await world.launch();

    // Start-up and idle with nothing to manage.
    await sleep(3000);
    await quiet();
    figures.rss_idle_mib = (await rssMiB(running.pid)) ?? null;
    figures.heap_idle_mib = (await running.heapMiB()) ?? null;
    figures.quay_calls_startup = world.total();
    log(`${name}: idle ${figures.rss_idle_mib} MiB, ${figures.quay_calls_startup} Quay calls at start-up`);

    // Calls per new namespace, with none and with R ImageStreams.
    for (const [probe, streams] of [["bench-p0", 0], ["bench-p3", R]] as const) {
      await quiet();
      quay.resetCalls();
      await create([probe], streams);
      const ms = await world.converge(`${probe}/`, 1, streams, Date.now() + 60_000);
      await quiet();
      figures[`quay_calls_new_namespace_${streams}is`] = ms === null ? null : world.syncCalls();
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
    figures.quay_calls_imagestream_update = world.syncCalls();
    quay.resetCalls();
    await createImageStream(kube, "bench-p3", `app-${R}`);
    const added = await world.converge("bench-p3/", 1, 1, Date.now() + 60_000);
    await quiet();
    figures.quay_calls_new_imagestream = added === null ? null : world.syncCalls();
    log(
      `${name}: calls per new namespace 0/${R} ImageStreams ${figures.quay_calls_new_namespace_0is}/` +
        `${
          figures[`quay_calls_new_namespace_${R}is`]
        }, per update ${figures.quay_calls_imagestream_update}, ` +
        `per new ImageStream ${figures.quay_calls_new_imagestream}`,
    );

    // Bursts of new namespaces.
    let managed = 2;
    let stopped = false;
    for (const size of options.sizes) {
      await quiet();
      quay.resetCalls();
      const prefix = `bench-b${size}-`;
      const names = Array.from({ length: size }, (_, i) => `${prefix}${i}`);
      const sampler = rssSampler(running.pid);
      // The operator's kubeconfig lies in the cluster's dir too: the apiserver group leaves it out.
      const clusterPids = (await pidsWithArgument(world.cluster.dir)).filter((pid) => pid !== running.pid);
      const cpu = await cpuMeter({ operator: [running.pid], apiserver: clusterPids, bench: [Deno.pid] });
      const scrape = () => scrapeRequestCounts((path) => world.cluster.request(path));
      const requestsBefore = await scrape();
      const started = performance.now();
      const creating = create(names, R);
      const limitMs = options.timeLimitMs ?? defaultTimeLimitMs(size, options.quay);
      const deadline = Date.now() + limitMs;
      await creating;
      // Creating the objects takes time of its own on two shared cores: the floor of convergence.
      figures[`create_s_${size}`] = round((performance.now() - started) / 1000, 2);
      const ms = await world.converge(prefix, size, size * R, deadline);
      const elapsed = performance.now() - started;
      const converged = Math.floor(tracker.linked(prefix) / 3);
      Object.assign(figures, burstFigures(size, ms, elapsed, converged));
      const spent = await cpu.stop();
      figures[`cpu_s_burst_${size}`] = spent.operator ?? null;
      figures[`cpu_s_burst_${size}_apiserver`] = spent.apiserver ?? null;
      figures[`cpu_s_burst_${size}_bench`] = spent.bench ?? null;
      const requests = diffCounts(requestsBefore, await scrape());
      // The bench's own creations (a namespace, three ServiceAccounts and R ImageStreams each) left out.
      // Stopped at the limit, part of the writes went to namespaces not yet converged: no figure.
      figures[`kube_writes_per_namespace_burst_${size}`] = ms === null
        ? null
        : round((writes(requests) - size * (4 + R)) / size, 2);
      log(
        `${name}: apiserver requests in the ${size} burst: ${
          [...requests].sort((a, b) => b[1] - a[1]).slice(0, 14).map(([k, n]) => `${k} ${n}`).join(", ")
        }`,
      );
      if (ms === null) stopped = true;
      // Stopped at the limit, part of the calls went to namespaces not yet converged: not a per-namespace figure.
      figures[`quay_calls_per_namespace_burst_${size}`] = ms === null
        ? null
        : round(world.syncCalls() / size, 2);
      await quiet();
      figures[`rss_peak_burst_${size}_mib`] = await sampler.stop();
      figures[`rss_after_${size}_mib`] = (await rssMiB(running.pid)) ?? null;
      figures[`heap_after_${size}_mib`] = (await running.heapMiB()) ?? null;
      managed += size;
      log(
        `${name}: ${size} new namespaces ${
          ms === null
            ? `STOPPED at the time limit (${round(elapsed / 1000)} s): ${converged} converged`
            : `converged in ${round(elapsed / 1000)} s`
        }, CPU s operator ${figures[`cpu_s_burst_${size}`]} / apiserver ${
          figures[`cpu_s_burst_${size}_apiserver`]
        } / bench ${figures[`cpu_s_burst_${size}_bench`]}, RSS peak ${
          figures[`rss_peak_burst_${size}_mib`]
        } MiB, after ${figures[`rss_after_${size}_mib`]} MiB`,
      );
    }

    // Nothing changes: what does it ask Quay?
    await quiet();
    quay.resetCalls();
    await sleep(options.idleSeconds * 1000);
    world.alive();
    const idleCalls = world.total();
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
    if (stopped) {
      // Still converging a burst stopped at the limit: its calls are that work, not idle ones.
      log(
        `${name}: the idle window is not idle (a burst was stopped at the time limit): idle figures left out`,
      );
      for (
        const key of [
          "quay_calls_idle_window",
          "quay_calls_idle_per_s",
          "quay_calls_idle_per_namespace_per_10min",
        ]
      ) {
        figures[key] = null;
      }
    }
    figures.rss_end_mib = (await rssMiB(running.pid)) ?? null;
    log(`${name}: ${idleCalls} Quay calls in ${options.idleSeconds} s idle with ${managed} namespaces`);

    // Restarted with nothing changed, its webhook on; then Builds in a synced namespace.
    if (!stopped) {
      const webhook = await prepareWebhook(name, world.cluster.dir);
      const restart = await measureRestart({
        name,
        peer: running,
        start: (w) => world.relaunch(w),
        webhook,
        quayCalls: world.total,
        resetQuayCalls: () => quay.resetCalls(),
        quietMs: options.quietMs,
        windowMs: options.restartWindowMs,
      }, () => {});
      Object.assign(figures, restart.figures);
      log(
        `${name}: restarted with ${managed} synced namespaces: ${restart.figures.restart_quay_calls} Quay calls, ready in ${restart.figures.restart_ready_s} s`,
      );
      Object.assign(figures, await measureWebhook(webhook, "bench-p3", options.webhook));
      log(
        `${name}: webhook ${figures.webhook_best_rps}/s, p99 ${figures.webhook_best_p99_ms} ms at ${figures.webhook_best_concurrency} connections`,
      );
    } else {
      log(`${name}: restart and webhook not measured (a burst was stopped at the time limit)`);
    }
    return figures;
  } finally {
    await world.close();
  }
}

/**
 * The convergence figures of a burst of `size`: `ms` from the last creation to converged (null when
 * the time limit stopped it), `elapsedMs` from the burst's start, `converged` namespaces by then.
 */
export function burstFigures(size: number, ms: number | null, elapsedMs: number, converged: number): Figures {
  const figures: Figures = {
    [`converge_s_${size}`]: ms === null ? null : round(elapsedMs / 1000, 2),
    // From the last object created to converged: the operator's own lag behind the burst.
    [`lag_s_${size}`]: ms === null ? null : round(ms / 1000, 2),
    [`converged_namespaces_${size}`]: converged,
    // Comparable whether or not the limit stopped the burst (then a rate over the converged part).
    [`converge_ms_per_namespace_${size}`]: converged > 0 ? round(elapsedMs / converged, 1) : null,
  };
  if (ms === null) figures[`converge_limit_s_${size}`] = round(elapsedMs / 1000, 1);
  return figures;
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
    if (
      /^(converged_namespaces|converge_limit_s|setup_objects)(_|$)/.test(key) || key === "managed_namespaces"
    ) {
      continue;
    }
    out[key] = value === null || other === null || other === undefined || other === 0
      ? null
      : round(value / other, 3);
  }
  return out;
}

/**
 * The time-to-converged ratios where one operator was stopped at the time limit: its time is then at
 * least the limit, so quay-bridge's time ÷ the limit bounds the ratio from above (upstream stopped)
 * or the limit ÷ upstream's time from below (quay-bridge stopped). Both stopped: no ratio (the time
 * per converged namespace still compares their rates). `keys` pairs each time figure with the figure
 * holding the limit it was stopped at (`converge_s_1000`, `converge_limit_s_1000`).
 */
export function boundedRatios(
  ours: Figures | undefined,
  theirs: Figures | undefined,
  keys: readonly (readonly [string, string])[],
): { ratios: Record<string, number>; bounds: Record<string, "<=" | ">="> } {
  const out: Record<string, number> = {};
  const bounds: Record<string, "<=" | ">="> = {};
  if (!ours || !theirs) return { ratios: out, bounds };
  for (const [key, limitKey] of keys) {
    const o = ours[key];
    const t = theirs[key];
    const oLimit = ours[limitKey];
    const tLimit = theirs[limitKey];
    if (typeof o === "number" && typeof tLimit === "number" && tLimit > 0) {
      out[key] = round(o / tLimit, 3);
      bounds[key] = "<=";
    } else if (typeof oLimit === "number" && typeof t === "number" && t > 0) {
      out[key] = round(oLimit / t, 3);
      bounds[key] = ">=";
    }
  }
  return { ratios: out, bounds };
}

/** Runs the comparison. */
export async function benchCompare(options: CompareOptions = {}): Promise<Comparison> {
  const log = options.log ?? (() => {});
  const peers = options.peers ?? ["quay-bridge", "upstream"];
  const settings: Settings = {
    sizes: options.sizes ?? [100, 1000],
    imageStreams: options.imageStreams ?? 3,
    idleSeconds: options.idleSeconds ?? 60,
    quietMs: options.quietMs ?? 2000,
    timeLimitMs: options.timeLimitMs,
    quay: options.quay ?? "world",
    webhook: options.webhook ?? {},
    restartWindowMs: options.restartWindowMs ?? 35_000,
  };
  // Build first, so a missing source fails before any cluster starts.
  const upstreamBinary = peers.includes("upstream")
    ? await ensureUpstreamBinary(options.upstreamSource)
    : undefined;
  const results: Partial<Record<PeerName, Figures>> = {};
  for (const name of peers) {
    log(
      `${name}: starting a fresh cluster and ${settings.quay === "real" ? "the real Quay" : "a Quay world"}`,
    );
    results[name] = await runPeer(name, upstreamBinary, settings, log);
  }
  const bounded = boundedRatios(
    results["quay-bridge"],
    results.upstream,
    settings.sizes.map((n) => [`converge_s_${n}`, `converge_limit_s_${n}`] as const),
  );
  return {
    quay: settings.quay,
    sizes: settings.sizes,
    imageStreams: settings.imageStreams,
    idleSeconds: settings.idleSeconds,
    timeLimitS: Object.fromEntries(
      settings.sizes.map((
        n,
      ) => [String(n), round((settings.timeLimitMs ?? defaultTimeLimitMs(n, settings.quay)) / 1000)]),
    ),
    peers: results,
    ratios: { ...ratios(results["quay-bridge"], results.upstream), ...bounded.ratios },
    bounds: bounded.bounds,
  };
}

if (import.meta.main) {
  const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const limit = arg("time-limit");
  const result = await benchCompare({
    sizes: arg("sizes")?.split(",").map(Number),
    idleSeconds: arg("idle") ? Number(arg("idle")) : undefined,
    timeLimitMs: limit ? parseDuration(limit) : undefined,
    quay: arg("quay") === "real" ? "real" : "world",
    peers: arg("only")?.split(",") as PeerName[] | undefined,
    upstreamSource: upstreamSource(arg("upstream-src")),
    log: (line) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n")),
  });
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result, null, 2) + "\n"));
}
