/**
 * @module
 * Admission webhook benchmark: admissions per second and latency over TLS on loopback with
 * HTTP/1.1 keep-alive, as kube-apiserver calls webhooks. The webhook runs in its own Deno process
 * (served from a certificate directory, as in production) and the load comes from a small Go
 * standard-library client (`bench/loadgen`, built once into `~/.cache/quay-bridge/`), because a
 * Deno fetch loop on the same two cores would measure itself more than the server. A last round
 * rotates the certificate files every 500 ms under load and counts failed requests.
 *
 * Run alone: `deno run -A --unstable-net bench/webhook.ts` (prints one JSON object).
 * The server mode (`bench/webhook.ts serve <dir>`) is what the harness starts.
 */
import { join } from "node:path";
import { createCertificateAuthority, issueServingCertificate, type KeyPair } from "../src/certs/pki.ts";
import { createLogger } from "../src/log.ts";
import { type AdmissionPort, createWebhookApp, serveWebhookFromDirectory } from "../src/webhook/mod.ts";

/** Options for {@linkcode benchWebhook}. */
export interface WebhookBenchOptions {
  /** Concurrent keep-alive connections to measure at. @default [1, 8, 16, 64] */
  concurrencies?: number[];
  /** Measured seconds per concurrency (after one second of warm-up). @default 5 */
  durationSeconds?: number;
  /** Also measure certificate rotation under load. @default true */
  rotation?: boolean;
  /** Also measure a do-nothing TLS server at 16 connections, the machine's ceiling right now. @default true */
  baseline?: boolean;
}

/** What the load client measured. */
export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  first_error?: string;
}

const NAMESPACE = "team-a";

/**
 * A Build CREATE AdmissionReview of about 450 bytes, the shape kube-apiserver sends: the Build's
 * output is an ImageStreamTag in `namespace`, which the webhook rewrites to the Quay image.
 */
export function buildAdmissionReview(namespace: string = NAMESPACE): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "build.openshift.io", version: "v1", kind: "Build" },
      operation: "CREATE",
      namespace,
      name: "app-1",
      object: {
        metadata: { name: "app-1", namespace },
        spec: {
          strategy: { type: "Docker", dockerStrategy: {} },
          output: { to: { kind: "ImageStreamTag", name: "app:latest" } },
        },
      },
    },
  });
}

/** A port answering every namespace from memory, as the operator's caches do. */
const benchPort: AdmissionPort = {
  target: (namespace) => ({
    state: "ready",
    registryHost: "quay.example.com",
    organization: `openshift_${namespace}`,
    pushSecretName: "builder-quay-openshift",
  }),
  provision: (namespace) => Promise.resolve(benchPort.target(namespace)),
};

function writeLine(value: unknown): Promise<number> {
  return Deno.stdout.write(new TextEncoder().encode(JSON.stringify(value) + "\n"));
}

/** Server mode: serve the webhook from `dir` until SIGTERM, then report RSS and rotations. */
async function serveForBench(dir: string): Promise<void> {
  let rotations = 0;
  // Info level as in production, written nowhere: formatting the lines is part of the cost.
  const logger = createLogger({
    level: "info",
    sink: (line) => {
      if (line.includes('"msg":"webhook certificate rotated"')) rotations++;
    },
  });
  const app = createWebhookApp({ admissionPort: benchPort, logger });
  const server = await serveWebhookFromDirectory({
    handler: app.fetch,
    certDir: dir,
    hostname: "127.0.0.1",
    port: 0,
    logger,
    debounceMs: 50,
  });
  // The baseline answers a fixed body of the same size without parsing or deciding anything.
  const sample = await app.request("/admissionwebhook", {
    method: "POST",
    body: buildAdmissionReview(),
    headers: { "content-type": "application/json" },
  });
  const fixed = new Uint8Array(await sample.arrayBuffer());
  const files = {
    cert: await Deno.readTextFile(join(dir, "tls.crt")),
    key: await Deno.readTextFile(join(dir, "tls.key")),
  };
  const baseline = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: files.cert, key: files.key, onListen: () => {} },
    async (request) => {
      await request.arrayBuffer();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(fixed);
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    },
  );
  await writeLine({
    port: server.addr.port,
    baselinePort: baseline.addr.port,
    seamlessRotation: server.seamlessRotation,
  });
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
  await Promise.all([server.close(), baseline.shutdown()]);
  await writeLine({ rssMb: Math.round(Deno.memoryUsage().rss / 1048576), rotations });
  Deno.exit(0);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds the Go load client once per source version into the user cache. */
export async function loadClient(): Promise<string> {
  const source = new URL("./loadgen/", import.meta.url).pathname;
  const code = await Deno.readTextFile(join(source, "go.mod")) +
    await Deno.readTextFile(join(source, "main.go"));
  const cache = join(
    Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache"),
    "quay-bridge",
  );
  const binary = join(cache, `loadgen-${(await sha256Hex(code)).slice(0, 12)}`);
  try {
    await Deno.stat(binary);
    return binary;
  } catch {
    // not built yet
  }
  await Deno.mkdir(cache, { recursive: true });
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("go", {
      args: ["build", "-o", binary, "."],
      cwd: source,
      env: { GOFLAGS: "-buildvcs=false", GOTOOLCHAIN: "local", CGO_ENABLED: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (cause) {
    throw new Error("the webhook benchmark needs Go (>= 1.21) on PATH to build bench/loadgen", { cause });
  }
  if (!output.success) {
    throw new Error(`go build bench/loadgen failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return binary;
}

/**
 * One round of the load client against `url`: `concurrency` keep-alive connections for `seconds`
 * (after one second of warm-up); every answer must be a JSON patch, else it counts as an error.
 */
export async function runLoad(
  binary: string,
  args: { url: string; body: string; ca: string; concurrency: number; seconds: number },
): Promise<LoadResult> {
  const output = await new Deno.Command(binary, {
    args: [
      "-url",
      args.url,
      "-body",
      args.body,
      "-cacert",
      args.ca,
      "-c",
      String(args.concurrency),
      "-d",
      `${args.seconds}s`,
      "-warmup",
      "1s",
      "-expect",
      '"patchType":"JSONPatch"',
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) throw new Error(`loadgen failed: ${new TextDecoder().decode(output.stderr)}`);
  return JSON.parse(new TextDecoder().decode(output.stdout)) as LoadResult;
}

async function writePair(dir: string, pair: KeyPair): Promise<void> {
  // Key first then certificate, each atomically: the server never serves a mismatched pair anyway.
  for (const [name, text] of [["tls.key", pair.keyPem], ["tls.crt", pair.certPem]] as const) {
    await Deno.writeTextFile(join(dir, `.${name}.tmp`), text);
    await Deno.rename(join(dir, `.${name}.tmp`), join(dir, name));
  }
}

/** Reads newline-delimited JSON objects from a child's stdout. */
function jsonLines(stream: ReadableStream<Uint8Array>): () => Promise<Record<string, unknown>> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    for (;;) {
      const newline = buffered.indexOf("\n");
      if (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        return JSON.parse(line);
      }
      const { done, value } = await reader.read();
      if (done) throw new Error("webhook bench server exited early");
      buffered += value;
    }
  };
}

/**
 * Measures the webhook: for each concurrency `webhook_c<N>_rps`, `_p50_ms`, `_p99_ms`, `_errors`;
 * with rotation, `webhook_rotation_rps`, `_p99_ms`, `_errors` and `webhook_rotations`; with the
 * baseline, `baseline_c16_rps` and `_p99_ms` (a do-nothing TLS server in the same process, to read
 * the webhook figures against what the machine gives right now); and the server's
 * `webhook_server_rss_mb` and `webhook_request_bytes`.
 */
export async function benchWebhook(options: WebhookBenchOptions = {}): Promise<Record<string, number>> {
  const seconds = options.durationSeconds ?? 5;
  const binary = await loadClient();
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-webhook-bench-" });
  const certDir = join(dir, "certs");
  await Deno.mkdir(certDir);
  const ca = await createCertificateAuthority({ commonName: "webhook-bench-ca" });
  const serving = () => issueServingCertificate(ca, { commonName: "localhost", ipAddresses: ["127.0.0.1"] });
  await writePair(certDir, await serving());
  const caFile = join(dir, "ca.crt");
  const bodyFile = join(dir, "review.json");
  const body = buildAdmissionReview();
  await Deno.writeTextFile(caFile, ca.certPem);
  await Deno.writeTextFile(bodyFile, body);

  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      "--allow-net=127.0.0.1",
      `--allow-read=${certDir}`,
      new URL(import.meta.url).pathname,
      "serve",
      certDir,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const next = jsonLines(server.stdout);
  const results: Record<string, number> = { webhook_request_bytes: body.length };
  try {
    const started = await next();
    const url = `https://127.0.0.1:${started.port}/admissionwebhook`;
    const load = { url, body: bodyFile, ca: caFile, seconds };
    if (options.baseline ?? true) {
      const url = `https://127.0.0.1:${started.baselinePort}/`;
      const r = await runLoad(binary, { ...load, url, concurrency: 16 });
      results.baseline_c16_rps = Math.round(r.rps);
      results.baseline_c16_p99_ms = r.p99_ms;
    }
    for (const concurrency of options.concurrencies ?? [1, 8, 16, 64]) {
      const r = await runLoad(binary, { ...load, concurrency });
      results[`webhook_c${concurrency}_rps`] = Math.round(r.rps);
      results[`webhook_c${concurrency}_p50_ms`] = r.p50_ms;
      results[`webhook_c${concurrency}_p99_ms`] = r.p99_ms;
      results[`webhook_c${concurrency}_errors`] = r.errors;
    }
    if (options.rotation ?? true) {
      results.webhook_rotation_seamless = started.seamlessRotation === true ? 1 : 0;
      let stop = false;
      let published = 0;
      const rotating = (async () => {
        while (!stop) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          if (stop) break;
          await writePair(certDir, await serving());
          published++;
        }
      })();
      const r = await runLoad(binary, { ...load, concurrency: 16 });
      stop = true;
      await rotating;
      results.webhook_rotation_rps = Math.round(r.rps);
      results.webhook_rotation_p99_ms = r.p99_ms;
      results.webhook_rotation_errors = r.errors;
      results.webhook_rotations_published = published;
    }
  } finally {
    server.kill("SIGTERM");
    const stopped = await next().catch(() => ({} as Record<string, unknown>));
    await server.status;
    if (typeof stopped.rssMb === "number") results.webhook_server_rss_mb = stopped.rssMb;
    if (typeof stopped.rotations === "number") results.webhook_rotations = stopped.rotations;
    await Deno.remove(dir, { recursive: true });
  }
  return results;
}

if (import.meta.main) {
  if (Deno.args[0] === "serve") await serveForBench(Deno.args[1] ?? ".");
  else await writeLine(await benchWebhook());
}
