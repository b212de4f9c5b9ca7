/**
 * @module
 * One operator's world for a side-by-side benchmark: a fresh real kube-apiserver (`tests/cluster`, no
 * controllers), a Quay ({@linkcode QuayTarget}: the test world's or the shared real one), the CRDs and
 * a QuayIntegration, a watch counting converged service accounts, and the operator process started
 * when the scenario says. Shared by the comparison (`compare.ts`) and the memory scenario
 * (`memory.ts`).
 *
 * "Converged" is what both operators promise for a namespace: its three service accounts link a
 * `<sa>-quay-<clusterID>` pull secret and Quay got a repository creation per ImageStream.
 */
import { KubeApiError } from "../src/errors.ts";
import { KubeClient, tokenConnection } from "../src/kube/client.ts";
import { IMAGE_STREAMS, NAMESPACES, type ResourceType, SERVICE_ACCOUNTS } from "../src/kube/resources.ts";
import { type RealCluster, startRealCluster } from "../tests/cluster/mod.ts";
import { installCrds, installIntegration, jsonClient } from "../tests/walkthrough/setup.ts";
import { type Peer, type PeerName, type PeerWebhook, startQuayBridge, startUpstream } from "./peers.ts";
import { type QuayKind, type QuayTarget, startQuayTarget } from "./quay_target.ts";

export const SERVICE_ACCOUNT_NAMES = ["builder", "default", "deployer"] as const;
/** Namespaces neither operator should manage: only the benchmark's own are compared. */
const DENYLIST = ["default", "quay-bridge", "kube-system", "kube-public", "kube-node-lease"];
/** Concurrent creations of a burst (the burst itself is what is measured: the pace of a busy cluster). */
const BURST_CONCURRENCY = 16;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Counts the benchmark's service accounts that link their Quay pull secret, from one watch. */
export class LinkTracker {
  readonly #linked = new Map<string, Set<string>>();
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;
  readonly #clusterId: string;

  constructor(kube: KubeClient, clusterId: string) {
    this.#clusterId = clusterId;
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
          const wanted = `${sa.metadata.name}-quay-${this.#clusterId}`;
          let set = this.#linked.get(ns);
          if (event.type !== "DELETED" && sa.imagePullSecrets?.some((s) => s.name === wanted)) {
            if (!set) this.#linked.set(ns, set = new Set());
            set.add(sa.metadata.name);
          } else set?.delete(sa.metadata.name);
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
    // `prefix` is a name prefix (`bench-b100-`) or one namespace (`bench-p3/`).
    for (const [ns, set] of this.#linked) if (`${ns}/`.startsWith(prefix)) n += set.size;
    return n;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}

/** Runs `fn` over `items`, `concurrency` at a time. */
export async function pool<T>(items: Iterable<T>, concurrency: number, fn: (item: T) => Promise<void>) {
  const iterator = items[Symbol.iterator]();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await fn(next.value);
  }));
}

/** Creates one object, retrying what a busy API server may answer (429, 5xx, a namespace not yet seen). */
export async function createRetrying(
  kube: KubeClient,
  type: ResourceType,
  object: { metadata: { name: string } },
) {
  for (let attempt = 1;; attempt++) {
    try {
      await kube.create(type, object as Parameters<KubeClient["create"]>[1]);
      return;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return;
      if (attempt >= 6 || (error instanceof KubeApiError && error.retry !== "transient")) throw error;
      await sleep(200 * attempt);
    }
  }
}

/** Creates projects as OpenShift hands them over: annotated, with their three service accounts. */
export async function createNamespaces(kube: KubeClient, names: readonly string[], imageStreams: number) {
  await pool(names, BURST_CONCURRENCY, async (name) => {
    await createRetrying(kube, NAMESPACES, namespaceObject(name));
    await Promise.all([
      ...SERVICE_ACCOUNT_NAMES.map((sa) =>
        createRetrying(kube, SERVICE_ACCOUNTS, serviceAccountObject(name, sa))
      ),
      ...Array.from(
        { length: imageStreams },
        (_, j) => createRetrying(kube, IMAGE_STREAMS, imageStreamObject(name, `app-${j}`)),
      ),
    ]);
  });
}

export function namespaceObject(name: string) {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, annotations: { "openshift.io/sa.scc.mcs": "s0:c1,c2" } },
  };
}

export function serviceAccountObject(namespace: string, name: string) {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } };
}

export function imageStreamObject(namespace: string, name: string) {
  return {
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStream",
    metadata: { name, namespace },
    spec: { lookupPolicy: { local: false } },
  };
}

export function createImageStream(kube: KubeClient, namespace: string, name: string) {
  return kube.create(IMAGE_STREAMS, imageStreamObject(namespace, name));
}

/** The routes of quay-bridge's audit-log poll (see {@linkcode PeerWorld.syncCalls}). */
const AUDIT_POLL_ROUTES: ReadonlySet<string> = new Set([
  "GET /api/v1/superuser/aggregatelogs",
  "GET /api/v1/superuser/logs",
]);

/** One operator's cluster and Quay, before and after the operator starts. */
export interface PeerWorld {
  readonly name: PeerName;
  readonly cluster: RealCluster;
  readonly kube: KubeClient;
  readonly quay: QuayTarget;
  readonly tracker: LinkTracker;
  /** Namespaces the run created (for the real Quay's cleanup). */
  readonly namespaces: Set<string>;
  /** Starts the operator. */
  launch(): Promise<Peer>;
  /** Starts the operator again (after it was stopped) with its admission webhook served as `webhook` says. */
  relaunch(webhook: PeerWebhook): Promise<Peer>;
  /** The running operator (after {@linkcode PeerWorld.launch}). */
  peer(): Peer;
  /** Quay calls since the last reset. */
  total(): number;
  /**
   * Quay calls since the last reset made to sync namespaces: all but quay-bridge's audit-log polls
   * (`GET /api/v1/superuser/aggregatelogs` and `…/logs`, one every `--audit-interval` whatever happens),
   * which are its steady-state cost and counted in the idle window instead.
   */
  syncCalls(): number;
  /** Repository creations since the last reset. */
  repoPosts(): number;
  /** Throws when the operator exited. */
  alive(): void;
  /** Waits until Quay got no call for `quietMs` (at most `maxMs`). */
  quiet(quietMs: number, maxMs?: number): Promise<void>;
  /**
   * Waits until `namespaces` namespaces named `prefix…` are converged with `repos` repository creations
   * since the last reset; the ms it took, or null when `deadline` (epoch ms) passed first.
   */
  converge(prefix: string, namespaces: number, repos: number, deadline: number): Promise<number | null>;
  close(): Promise<void>;
}

/** Starts one operator's world (without the operator: {@linkcode PeerWorld.launch} starts it). */
export async function startPeerWorld(
  name: PeerName,
  quayKind: QuayKind,
  upstreamBinary: string | undefined,
  log: (line: string) => void,
): Promise<PeerWorld> {
  // QUAY_BRIDGE_BENCH_APISERVER_ARGS: more kube-apiserver flags for a look inside a run (e.g.
  // `--profiling=true`, then `go tool pprof` on /debug/pprof/profile with the admin token).
  const apiserverArgs = (Deno.env.get("QUAY_BRIDGE_BENCH_APISERVER_ARGS") ?? "").split(/\s+/).filter(Boolean);
  const cluster = await startRealCluster({ controllers: false, apiserverArgs });
  let quay: QuayTarget | undefined;
  try {
    quay = await startQuayTarget(quayKind);
  } catch (error) {
    await cluster[Symbol.asyncDispose]();
    throw error;
  }
  const q = quay;
  const kube = new KubeClient(tokenConnection(cluster.url, cluster.caPem, cluster.adminToken));
  const api = jsonClient(cluster.url, cluster.adminToken, cluster.caPem);
  const tracker = new LinkTracker(kube, q.clusterId);
  const namespaces = new Set<string>();
  const kubeconfig = `${cluster.dir}/bench.kubeconfig`;
  let peer: Peer | undefined;
  const start = async (webhook: PeerWebhook | undefined): Promise<Peer> => {
    peer = name === "upstream"
      ? startUpstream(upstreamBinary as string, kubeconfig, webhook)
      : await startQuayBridge(kubeconfig, webhook);
    return peer;
  };
  const running = (): Peer => {
    if (!peer) throw new Error(`${name} was not started`);
    return peer;
  };
  const total = () => Object.values(q.calls()).reduce((a, n) => a + n, 0);
  const syncCalls = () =>
    Object.entries(q.calls()).filter(([route]) => !AUDIT_POLL_ROUTES.has(route)).reduce(
      (a, [, n]) => a + n,
      0,
    );
  const alive = () => {
    const status = running().exited();
    if (status) throw new Error(`${name} exited with code ${status.code}:\n${running().tail()}`);
  };
  const close = async () => {
    // A step that hangs must not hold the whole benchmark: each gets a bounded time, and says so.
    const step = async (what: string, fn: () => Promise<void> | void, ms = 20_000) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) =>
        timer = setTimeout(() => {
          log(`${name}: ${what} did not finish within ${ms / 1000} s; going on`);
          resolve();
        }, ms)
      );
      await Promise.race([Promise.resolve().then(fn), late]);
      clearTimeout(timer);
    };
    const stopping = performance.now();
    await step("stopping the operator", async () => {
      await peer?.stop();
      if (peer) log(`${name}: stopped in ${round((performance.now() - stopping) / 1000)} s`);
    });
    // Aborting a watch does not end a read in progress; closing the client's connections does.
    const watchClosed = tracker.close();
    kube.close();
    // After a large burst the body's cancel can linger; the cluster's stop ends it anyway.
    await step("closing the ServiceAccount watch", () => watchClosed, 3000);
    api.close();
    try {
      // Deleting a run's organizations on the real Quay takes about a second each: not bounded.
      const deleted = await q.close(namespaces);
      if (q.kind === "real") {
        log(`${name}: deleted ${deleted} organizations ${q.clusterId}_* from the real Quay`);
      }
    } finally {
      await cluster[Symbol.asyncDispose]();
    }
  };
  try {
    await installCrds(api);
    await installIntegration(api, {
      operatorNamespace: "quay-bridge",
      quayUrl: q.url,
      quayToken: q.token,
      quayCaPem: q.caPem,
      spec: { clusterID: q.clusterId, denylistNamespaces: DENYLIST },
    });
  } catch (error) {
    await close();
    throw error;
  }
  return {
    name,
    cluster,
    kube,
    quay: q,
    tracker,
    namespaces,
    async launch() {
      await cluster.writeKubeconfig(kubeconfig, { token: cluster.adminToken, namespace: "quay-bridge" });
      return await start(undefined);
    },
    relaunch: start,
    peer: running,
    total,
    syncCalls,
    repoPosts: () => q.calls()["POST /api/v1/repository"] ?? 0,
    alive,
    async quiet(quietMs, maxMs = 60_000) {
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
        } else if (Date.now() - since >= quietMs) return;
      }
    },
    async converge(prefix, count, repos, deadline) {
      const started = performance.now();
      // Counting walks every tracked namespace: poll less often when there are many.
      const every = count > 1000 ? 500 : 50;
      const repoPosts = () => q.calls()["POST /api/v1/repository"] ?? 0;
      while (tracker.linked(prefix) < count * 3 || repoPosts() < repos) {
        if (Date.now() > deadline) return null;
        alive();
        await sleep(every);
      }
      return performance.now() - started;
    },
    close,
  };
}
