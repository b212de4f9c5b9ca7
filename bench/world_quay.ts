/**
 * @module
 * Benchmark of the test world's Quay: single-request latency over HTTP/2 and HTTP/1.1, the
 * upstream bridge's namespace setup sequence at a fixed concurrency, and robot push/pull through
 * the registry. Prints one JSON document on stdout.
 *
 * `deno run --allow-net --allow-env --allow-read bench/world_quay.ts [--namespaces=200] [--concurrency=8]`
 */
import { startQuayWorld } from "../tests/world/quay/mod.ts";
import { pullManifest, pushImage } from "../tests/world/quay/registry_client.ts";

/** Options of {@linkcode runQuayWorldBench}. */
export interface QuayWorldBenchOptions {
  /** Namespaces set up in the bridge scenario. @default 200 */
  namespaces?: number;
  /** Concurrent namespace setups. @default 8 */
  concurrency?: number;
  /** Sequential requests per latency sample. @default 1000 */
  requests?: number;
  /** Images pushed and pulled. @default 30 */
  images?: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function summary(samples: number[]): { p50_ms: number; p99_ms: number; mean_ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((n, x) => n + x, 0) / Math.max(1, samples.length);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    mean_ms: round(mean),
  };
}

interface BridgeContext {
  url: string;
  client: Deno.HttpClient;
  headers: Record<string, string>;
}

async function call(ctx: BridgeContext, method: string, path: string, body?: unknown): Promise<number> {
  const headers: Record<string, string> = { ...ctx.headers };
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(ctx.url + path, {
    method,
    headers,
    client: ctx.client,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await r.arrayBuffer();
  return r.status;
}

/** The upstream bridge's calls for one namespace (docs/predecessor.md), with two ImageStreams. */
async function setupNamespace(ctx: BridgeContext, i: number): Promise<void> {
  const org = `openshift_ns${i}`;
  if (await call(ctx, "GET", `/api/v1/organization/${org}`) === 404) {
    await call(ctx, "POST", "/api/v1/organization/", { name: org, email: `${org}@redhat.com` });
  }
  await Promise.all(([["builder", "write"], ["default", "read"], ["deployer", "read"]] as const).map(
    async ([sa, role]) => {
      if (await call(ctx, "GET", `/api/v1/organization/${org}/robots/${sa}`) === 400) {
        await call(ctx, "PUT", `/api/v1/organization/${org}/robots/${sa}`);
      }
      await call(ctx, "GET", `/api/v1/organization/${org}/prototypes`);
      await call(ctx, "POST", `/api/v1/organization/${org}/prototypes`, {
        id: "",
        role,
        delegate: { kind: "user", name: `${org}+${sa}`, is_robot: true, is_org_member: true },
      });
    },
  ));
  for (const is of ["app", "db"]) {
    if ((await call(ctx, "GET", `/api/v1/repository/${org}/${is}`)) !== 200) {
      await call(ctx, "POST", "/api/v1/repository", {
        namespace: org,
        visibility: "private",
        repository: is,
        description: "",
        repo_kind: "image",
      });
    }
  }
}

/** Runs the benchmark and returns its figures. */
export async function runQuayWorldBench(
  options: QuayWorldBenchOptions = {},
): Promise<Record<string, unknown>> {
  const namespaces = options.namespaces ?? 200;
  const concurrency = options.concurrency ?? 8;
  const requests = options.requests ?? 1000;
  const images = options.images ?? 30;
  const quay = await startQuayWorld({ requireOrgEmail: true });
  const results: Record<string, unknown> = {};
  try {
    const auth = { authorization: `Bearer ${quay.adminToken}`, accept: "application/json" };

    for (const http2 of [true, false]) {
      const client = Deno.createHttpClient({ caCerts: [quay.caPem], http2, http1: true });
      const samples: number[] = [];
      const started = performance.now();
      for (let i = 0; i < requests; i++) {
        const t = performance.now();
        const r = await fetch(`${quay.url}/api/v1/organization/none`, { client, headers: auth });
        await r.arrayBuffer();
        samples.push(performance.now() - t);
      }
      results[http2 ? "get_org_http2" : "get_org_http1"] = {
        ...summary(samples.slice(5)),
        rps: Math.round(requests / ((performance.now() - started) / 1000)),
      };
      client.close();
    }

    const client = Deno.createHttpClient({ caCerts: [quay.caPem] });
    const ctx: BridgeContext = { url: quay.url, client, headers: auth };
    quay.resetCalls();
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < namespaces) await setupNamespace(ctx, next++);
    }));
    const seconds = (performance.now() - started) / 1000;
    const calls = Object.values(quay.calls()).reduce((n, c) => n + c, 0);
    results.bridge_namespace_setup = {
      namespaces,
      concurrency,
      seconds: Math.round(seconds * 1000) / 1000,
      namespaces_per_second: Math.round(namespaces / seconds),
      calls_per_namespace: calls / namespaces,
      calls_per_second: Math.round(calls / seconds),
    };

    const robot = await (await fetch(`${quay.url}/api/v1/organization/openshift_ns0/robots/builder`, {
      client,
      headers: auth,
    })).json() as { name: string; token: string };
    const pushes: number[] = [];
    const pulls: number[] = [];
    for (let i = 0; i < images; i++) {
      const target = {
        registryUrl: quay.url,
        client,
        repository: "openshift_ns0/app",
        username: robot.name,
        password: robot.token,
      };
      let t = performance.now();
      await pushImage({ ...target, tag: `v${i}` });
      pushes.push(performance.now() - t);
      t = performance.now();
      await pullManifest({ ...target, reference: `v${i}` });
      pulls.push(performance.now() - t);
    }
    results.robot_push = summary(pushes);
    results.robot_pull = summary(pulls);
    results.rss_mib = Math.round(Deno.memoryUsage().rss / 1048576);
    client.close();
  } finally {
    await quay.close();
  }
  return results;
}

if (import.meta.main) {
  const args = Object.fromEntries(Deno.args.map((a) => a.replace(/^--/, "").split("=")));
  const results = await runQuayWorldBench({
    namespaces: args.namespaces ? Number(args.namespaces) : undefined,
    concurrency: args.concurrency ? Number(args.concurrency) : undefined,
  });
  await Deno.stdout.write(
    new TextEncoder().encode(JSON.stringify({ bench: "world_quay", ...results }, null, 2) + "\n"),
  );
}
