/**
 * @module
 * Benchmark of the test world's Kubernetes API: it fills a world with 10,000 namespaces holding 5
 * ImageStreams and 3 Secrets each (in-process, the fast path), then times full lists over HTTPS
 * (all ImageStreams, all namespaces, a Table of all namespaces as `kubectl get ns` asks, a paged
 * list, one namespace's ImageStreams), and a watch fan-out to 10 watchers: the latency from a PATCH
 * to the moment all 10 have the event, and the rate at which a burst of changes reaches all of them.
 *
 * Run alone: `deno run -A bench/world_kube.ts [--namespaces=10000]` (prints one JSON object).
 */
import { startKubeWorld } from "../tests/world/kube/mod.ts";
import type { KubeObject } from "../tests/world/kube/types.ts";

/** Options of {@linkcode benchWorldKube}. */
export interface KubeWorldBenchOptions {
  /** @default 10_000 */
  namespaces?: number;
  /** @default 5 */
  imageStreamsPerNamespace?: number;
  /** @default 3 */
  secretsPerNamespace?: number;
  /** @default 10 */
  watchers?: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function* objects(namespaces: number, streams: number, secrets: number): Generator<KubeObject> {
  const dockerconfig = btoa(
    JSON.stringify({ auths: { "quay.example.com": { auth: btoa("org+robot:" + "t".repeat(64)) } } }),
  );
  for (let n = 0; n < namespaces; n++) {
    const ns = `team-${String(n).padStart(5, "0")}`;
    yield {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: ns,
        labels: { "quay.redhat.com/managed": "true" },
        annotations: { "openshift.io/sa.scc.mcs": "s0:c1,c0" },
      },
    };
    for (let i = 0; i < streams; i++) {
      yield {
        apiVersion: "image.openshift.io/v1",
        kind: "ImageStream",
        metadata: { name: `app-${i}`, namespace: ns, labels: { app: `app-${i}` } },
        spec: {
          lookupPolicy: { local: false },
          tags: [{
            name: "latest",
            from: { kind: "DockerImage", name: `quay.example.com/openshift_${ns}/app-${i}:latest` },
          }],
        },
        status: { dockerImageRepository: `image-registry.openshift-image-registry.svc:5000/${ns}/app-${i}` },
      };
    }
    for (let i = 0; i < secrets; i++) {
      yield {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: `robot-${i}-quay-openshift`,
          namespace: ns,
          labels: { "quay-bridge.quay.redhat.com/managed": "true" },
        },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": dockerconfig },
      };
    }
  }
}

interface Watcher {
  seen: number;
  events: number;
  done: Promise<void>;
}

/** Measures the world; returns figures in ms, MB and events per second. */
export async function benchWorldKube(options: KubeWorldBenchOptions = {}): Promise<Record<string, number>> {
  const namespaces = options.namespaces ?? 10_000;
  const streams = options.imageStreamsPerNamespace ?? 5;
  const secrets = options.secretsPerNamespace ?? 3;
  const watcherCount = options.watchers ?? 10;
  const world = await startKubeWorld({ watchHistory: 100_000 });
  const http = Deno.createHttpClient({ caCerts: [world.caPem] });
  const auth = { authorization: `Bearer ${world.adminToken}` };
  const results: Record<string, number> = {};
  const controllers: AbortController[] = [];
  try {
    const fillStart = performance.now();
    world.load(objects(namespaces, streams, secrets));
    results.fill_ms = round(performance.now() - fillStart);
    results.objects = namespaces * (1 + streams + secrets);

    const timeGet = async (path: string, headers: Record<string, string> = {}, runs = 3) => {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        const response = await fetch(world.url + path, { headers: { ...auth, ...headers }, client: http });
        const body = await response.arrayBuffer();
        times.push(performance.now() - t);
        bytes = body.byteLength;
        if (!response.ok) throw new Error(`${path}: ${response.status}`);
      }
      times.sort((a, b) => a - b);
      return { ms: round(times[Math.floor(times.length / 2)] as number), mb: round(bytes / 1e6, 2) };
    };
    const allStreams = await timeGet("/apis/image.openshift.io/v1/imagestreams");
    results.list_all_imagestreams_ms = allStreams.ms;
    results.list_all_imagestreams_mb = allStreams.mb;
    const allNs = await timeGet("/api/v1/namespaces");
    results.list_all_namespaces_ms = allNs.ms;
    results.list_all_namespaces_mb = allNs.mb;
    results.table_all_namespaces_ms =
      (await timeGet("/api/v1/namespaces", { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" })).ms;
    results.list_all_secrets_ms = (await timeGet("/api/v1/secrets")).ms;
    results.list_imagestreams_by_label_ms =
      (await timeGet("/apis/image.openshift.io/v1/imagestreams?labelSelector=app%3Dapp-3")).ms;

    const pagedStart = performance.now();
    let token = "";
    let pages = 0;
    do {
      const r = await fetch(
        `${world.url}/apis/image.openshift.io/v1/imagestreams?limit=500${token ? `&continue=${token}` : ""}`,
        { headers: auth, client: http },
      );
      const page = await r.json();
      token = page.metadata.continue ?? "";
      pages++;
    } while (token);
    results.list_all_imagestreams_paged_500_ms = round(performance.now() - pagedStart);
    results.list_pages = pages;

    const oneNs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const r = await fetch(
        `${world.url}/apis/image.openshift.io/v1/namespaces/team-${
          String(i * 37 % namespaces).padStart(5, "0")
        }/imagestreams`,
        { headers: auth, client: http },
      );
      await r.arrayBuffer();
      oneNs.push(performance.now() - t);
    }
    oneNs.sort((a, b) => a - b);
    results.list_one_namespace_p50_ms = round(percentile(oneNs, 0.5), 2);
    results.list_one_namespace_p99_ms = round(percentile(oneNs, 0.99), 2);

    // Watch fan-out: 10 watchers of every ImageStream, from the current resourceVersion.
    const from = world.resourceVersion();
    const watchers: Watcher[] = [];
    const waiters = new Set<() => void>();
    for (let i = 0; i < watcherCount; i++) {
      const controller = new AbortController();
      controllers.push(controller);
      const response = await fetch(
        `${world.url}/apis/image.openshift.io/v1/imagestreams?watch=1&resourceVersion=${from}`,
        {
          headers: auth,
          client: http,
          signal: controller.signal,
        },
      );
      const watcher: Watcher = { seen: 0, events: 0, done: Promise.resolve() };
      watcher.done = (async () => {
        const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream())
          .getReader();
        let buffer = "";
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            buffer += value;
            let newline: number;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              const rv = /"resourceVersion":"(\d+)"/.exec(line);
              if (rv) watcher.seen = Math.max(watcher.seen, Number(rv[1]));
              watcher.events++;
            }
            for (const w of waiters) w();
          }
        } catch {
          // aborted at the end
        }
      })();
      watchers.push(watcher);
    }
    const allSeen = (rv: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (watchers.every((w) => w.seen >= rv)) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      });

    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const ns = `team-${String(i % namespaces).padStart(5, "0")}`;
      const t = performance.now();
      const r = await fetch(`${world.url}/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/app-0`, {
        method: "PATCH",
        headers: { ...auth, "content-type": "application/merge-patch+json" },
        body: JSON.stringify({ metadata: { annotations: { round: String(i) } } }),
        client: http,
      });
      const object = await r.json();
      await allSeen(Number(object.metadata.resourceVersion));
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    results.watch_fanout_watchers = watcherCount;
    results.patch_to_all_watchers_p50_ms = round(percentile(latencies, 0.5), 2);
    results.patch_to_all_watchers_p99_ms = round(percentile(latencies, 0.99), 2);

    const burst = 5000;
    const burstStart = performance.now();
    const batch: KubeObject[] = [];
    for (let i = 0; i < burst; i++) {
      const ns = `team-${String(i % namespaces).padStart(5, "0")}`;
      batch.push({
        apiVersion: "image.openshift.io/v1",
        kind: "ImageStream",
        metadata: { name: "app-1", namespace: ns, labels: { app: "app-1", burst: String(i) } },
        spec: { lookupPolicy: { local: false } },
      });
    }
    world.load(batch);
    await allSeen(Number(world.resourceVersion()));
    const burstMs = performance.now() - burstStart;
    results.burst_events = burst;
    results.burst_to_all_watchers_ms = round(burstMs);
    results.burst_delivered_events_per_s = Math.round((burst * watcherCount) / (burstMs / 1000));
    results.rss_mb = round(Deno.memoryUsage().rss / 1e6, 0);
  } finally {
    for (const c of controllers) c.abort();
    http.close();
    await world.close();
  }
  return results;
}

if (import.meta.main) {
  const arg = Deno.args.find((a) => a.startsWith("--namespaces="));
  const namespaces = arg ? Number(arg.split("=")[1]) : undefined;
  // deno-lint-ignore no-console
  console.log(JSON.stringify(await benchWorldKube({ namespaces }), null, 2));
}
