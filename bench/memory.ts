/**
 * @module
 * The memory scenario, side by side: a cluster already holding 10,000 projects with 5 ImageStreams
 * each and 30,000 Secrets that are not the operator's (three Opaque Secrets per project, as
 * applications keep), then each operator started on it (a fresh cluster and test-world Quay each),
 * waited for until every project is converged (or the time limit), and its resident memory read
 * once Quay is quiet. quay-bridge's target: at most 250 MiB at the full size.
 *
 * The world is filled before the operator starts, many requests in flight and no wait per object,
 * so the setup's own duration (reported) does not compete with the operator. `namespaces` scales it
 * down for a quick look; the target is judged at the full size only.
 *
 * `deno run -A bench/memory.ts [--namespaces=200] [--only=quay-bridge]` runs it alone.
 */
import "../src/quiet_deprecations.ts";
import type { KubeClient } from "../src/kube/client.ts";
import {
  IMAGE_STREAMS,
  NAMESPACES,
  type ResourceType,
  SECRETS,
  SERVICE_ACCOUNTS,
} from "../src/kube/resources.ts";
import type { Figures } from "./compare.ts";
import { boundedRatios, ratios } from "./compare.ts";
import { parseDuration } from "./duration.ts";
import {
  createRetrying,
  imageStreamObject,
  namespaceObject,
  pool,
  round,
  SERVICE_ACCOUNT_NAMES,
  serviceAccountObject,
  startPeerWorld,
} from "./peer_world.ts";
import { ensureUpstreamBinary, type PeerName, rssMiB, rssSampler, upstreamSource } from "./peers.ts";

/** The full size of the scenario (the issue's). */
export const MEMORY_FULL = { namespaces: 10_000, imageStreams: 5, secrets: 30_000 } as const;

/** Options of {@linkcode benchMemory}. */
export interface MemoryOptions {
  /** Projects. @default 10_000 */
  namespaces?: number;
  /** ImageStreams per project. @default 5 */
  imageStreams?: number;
  /** Unrelated Secrets in all (spread over the projects). @default 3 × namespaces */
  secrets?: number;
  /** How long each operator is waited for to converge. @default 15 min */
  timeLimitMs?: number | undefined;
  /** Quay is "quiet" when no call came for this long. @default 5000 */
  quietMs?: number;
  /** Requests in flight while filling the cluster. @default 128 */
  concurrency?: number;
  peers?: readonly PeerName[];
  upstreamSource?: string | undefined;
  log?: (line: string) => void;
}

/** The scenario's figures per operator and quay-bridge ÷ upstream. */
export interface MemoryComparison {
  readonly namespaces: number;
  readonly imageStreams: number;
  readonly secrets: number;
  /** Smaller than the issue's scenario: the target cannot be judged. */
  readonly scaled: boolean;
  readonly timeLimitS: number;
  readonly peers: Partial<Record<PeerName, Figures>>;
  readonly ratios: Record<string, number | null>;
  /** `converge_s` is a bound when an operator was stopped at the time limit (see `compare.ts`). */
  readonly bounds: Record<string, "<=" | ">=">;
}

/** About the size of a real application Secret's data (a config file, a key pair). */
const SECRET_PAYLOAD = btoa("x".repeat(1536));

function secretObject(namespace: string, name: string) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: { name, namespace, labels: { app: name } },
    data: { "config.yaml": SECRET_PAYLOAD },
  };
}

/**
 * Fills the cluster: the namespaces first, then their ServiceAccounts, ImageStreams and Secrets,
 * `concurrency` requests in flight throughout. Returns the number of objects.
 */
export async function fillCluster(
  kube: KubeClient,
  names: readonly string[],
  imageStreams: number,
  secrets: number,
  concurrency: number,
): Promise<number> {
  await pool(names, concurrency, (ns) => createRetrying(kube, NAMESPACES, namespaceObject(ns)));
  function* children(): Generator<[ResourceType, { metadata: { name: string } }]> {
    for (const [i, ns] of names.entries()) {
      for (const sa of SERVICE_ACCOUNT_NAMES) yield [SERVICE_ACCOUNTS, serviceAccountObject(ns, sa)];
      for (let j = 0; j < imageStreams; j++) yield [IMAGE_STREAMS, imageStreamObject(ns, `app-${j}`)];
      // The Secrets spread evenly: namespace i holds those numbered i, i + n, i + 2n …
      for (let k = i; k < secrets; k += names.length) yield [SECRETS, secretObject(ns, `app-config-${k}`)];
    }
  }
  let count = names.length;
  await pool(children(), concurrency, async ([type, object]) => {
    await createRetrying(kube, type, object);
    count++;
  });
  return count;
}

interface Settings {
  namespaces: number;
  imageStreams: number;
  secrets: number;
  timeLimitMs: number;
  quietMs: number;
  concurrency: number;
}

async function runPeer(
  name: PeerName,
  upstreamBinary: string | undefined,
  s: Settings,
  log: (line: string) => void,
): Promise<Figures> {
  const figures: Figures = {};
  const world = await startPeerWorld(name, "world", upstreamBinary, log);
  try {
    const names = Array.from({ length: s.namespaces }, (_, i) => `bench-m-${i}`);
    const setupStart = performance.now();
    const objects = await fillCluster(world.kube, names, s.imageStreams, s.secrets, s.concurrency);
    const setupS = (performance.now() - setupStart) / 1000;
    figures.setup_s = round(setupS, 1);
    figures.setup_objects = objects;
    figures.setup_objects_per_s = Math.round(objects / setupS);
    log(`${name}: cluster filled with ${objects} objects in ${figures.setup_s} s`);

    world.quay.resetCalls();
    const started = performance.now();
    const deadline = Date.now() + s.timeLimitMs;
    const running = await world.launch();
    const sampler = rssSampler(running.pid);
    const ms = await world.converge("bench-m-", s.namespaces, s.namespaces * s.imageStreams, deadline);
    const elapsed = performance.now() - started;
    const converged = Math.floor(world.tracker.linked("bench-m-") / 3);
    figures.converge_s = ms === null ? null : round(elapsed / 1000, 1);
    if (ms === null) figures.converge_limit_s = round(elapsed / 1000, 1);
    figures.converged_namespaces = converged;
    figures.quay_calls_per_namespace = round(world.syncCalls() / s.namespaces, 2);
    await world.quiet(s.quietMs, 120_000);
    figures.rss_peak_mib = await sampler.stop();
    figures.rss_after_converged_mib = (await rssMiB(running.pid)) ?? null;
    figures.heap_after_converged_mib = (await running.heapMiB()) ?? null;
    log(
      `${name}: ${
        ms === null
          ? `STOPPED at the time limit (${
            round(elapsed / 1000)
          } s): ${converged} of ${s.namespaces} converged`
          : `${s.namespaces} namespaces converged in ${round(elapsed / 1000)} s`
      }; resident memory ${figures.rss_after_converged_mib} MiB (peak ${figures.rss_peak_mib})`,
    );
    return figures;
  } finally {
    await world.close();
  }
}

/** Runs the memory scenario for each operator. */
export async function benchMemory(options: MemoryOptions = {}): Promise<MemoryComparison> {
  const log = options.log ?? (() => {});
  const peers = options.peers ?? ["quay-bridge", "upstream"];
  const namespaces = options.namespaces ?? MEMORY_FULL.namespaces;
  const settings: Settings = {
    namespaces,
    imageStreams: options.imageStreams ?? MEMORY_FULL.imageStreams,
    secrets: options.secrets ?? namespaces * 3,
    timeLimitMs: options.timeLimitMs ?? 15 * 60_000,
    quietMs: options.quietMs ?? 5000,
    concurrency: options.concurrency ?? 128,
  };
  const upstreamBinary = peers.includes("upstream")
    ? await ensureUpstreamBinary(options.upstreamSource)
    : undefined;
  const results: Partial<Record<PeerName, Figures>> = {};
  for (const name of peers) {
    log(
      `${name}: memory scenario, ${settings.namespaces} namespaces × ${settings.imageStreams} ImageStreams, ` +
        `${settings.secrets} unrelated Secrets`,
    );
    results[name] = await runPeer(name, upstreamBinary, settings, log);
  }
  const bounded = boundedRatios(results["quay-bridge"], results.upstream, [[
    "converge_s",
    "converge_limit_s",
  ]]);
  return {
    namespaces: settings.namespaces,
    imageStreams: settings.imageStreams,
    secrets: settings.secrets,
    scaled: settings.namespaces < MEMORY_FULL.namespaces ||
      settings.imageStreams < MEMORY_FULL.imageStreams ||
      settings.secrets < MEMORY_FULL.secrets,
    timeLimitS: round(settings.timeLimitMs / 1000),
    peers: results,
    ratios: { ...ratios(results["quay-bridge"], results.upstream), ...bounded.ratios },
    bounds: bounded.bounds,
  };
}

if (import.meta.main) {
  const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const limit = arg("time-limit");
  const result = await benchMemory({
    namespaces: arg("namespaces") ? Number(arg("namespaces")) : undefined,
    timeLimitMs: limit ? parseDuration(limit) : undefined,
    peers: arg("only")?.split(",") as PeerName[] | undefined,
    upstreamSource: upstreamSource(arg("upstream-src")),
    log: (line) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n")),
  });
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result, null, 2) + "\n"));
}
