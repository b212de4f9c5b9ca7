/**
 * @module
 * Helpers for the world's own tests: a JSON client over the world's TLS, a reader of watch
 * streams with deadlines, and the real kubectl run as a subprocess with its own kubeconfig and cache
 * directory, killed if it hangs.
 */
import { type KubeWorld, type KubeWorldOptions, startKubeWorld } from "./mod.ts";

/** A response, decoded. */
export interface ApiResponse {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

/** Options of one request. */
export interface RequestOptions {
  body?: unknown;
  /** Raw body text (sent as is). */
  raw?: string | Uint8Array;
  contentType?: string;
  token?: string;
  headers?: Record<string, string>;
}

/** A world plus a client, for one test. */
export interface TestWorld {
  world: KubeWorld;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /** Opens a watch; the caller must `close()` it. */
  watch(path: string, options?: { token?: string; headers?: Record<string, string> }): Promise<WatchReader>;
  http: Deno.HttpClient;
}

/** Reads JSON lines from a watch response. */
export class WatchReader {
  readonly status: number;
  readonly #reader: ReadableStreamDefaultReader<string> | undefined;
  #buffer = "";
  #done = false;

  constructor(response: Response) {
    this.status = response.status;
    this.#reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event, or `undefined` when the stream ended; fails after `timeoutMs`. */
  // deno-lint-ignore no-explicit-any
  async next(timeoutMs = 5000): Promise<any | undefined> {
    for (;;) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        if (line.trim()) return JSON.parse(line);
        continue;
      }
      if (this.#done || !this.#reader) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no watch event within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const chunk = await Promise.race([this.#reader.read(), timeout]);
        if (chunk.done) this.#done = true;
        else this.#buffer += chunk.value;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Reads events until one satisfies `predicate`. */
  // deno-lint-ignore no-explicit-any
  async until(predicate: (event: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = await this.next(Math.max(1, deadline - Date.now()));
      if (event === undefined) throw new Error("watch ended before the expected event");
      if (predicate(event)) return event;
    }
  }

  async close(): Promise<void> {
    await this.#reader?.cancel().catch(() => {});
  }
}

/** Starts a world and a client; closes both after `fn`. */
export async function withWorld(
  options: KubeWorldOptions,
  fn: (t: TestWorld) => Promise<void>,
): Promise<void> {
  const world = await startKubeWorld(options);
  const http = Deno.createHttpClient({ caCerts: [world.caPem] });
  const request = async (method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse> => {
    const headers = new Headers(o.headers);
    headers.set("authorization", `Bearer ${o.token ?? world.adminToken}`);
    let body: BodyInit | undefined;
    if (o.raw !== undefined) body = o.raw as BodyInit;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined) headers.set("content-type", o.contentType ?? "application/json");
    const response = await fetch(world.url + path, { method, headers, body, client: http });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
  const watch = async (path: string, o: { token?: string; headers?: Record<string, string> } = {}) => {
    const headers = new Headers(o.headers);
    headers.set("authorization", `Bearer ${o.token ?? world.adminToken}`);
    const response = await fetch(world.url + path, { headers, client: http });
    return new WatchReader(response);
  };
  try {
    await fn({ world, request, watch, http });
  } finally {
    http.close();
    await world.close();
  }
}

/** The outcome of a kubectl run. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl against a world with a kubeconfig in a temp dir. */
export class Kubectl {
  readonly #dir: string;
  readonly #world: KubeWorld;

  private constructor(world: KubeWorld, dir: string) {
    this.#world = world;
    this.#dir = dir;
  }

  static async create(world: KubeWorld): Promise<Kubectl> {
    const dir = await Deno.makeTempDir({ prefix: "kube-world-kubectl-" });
    await world.writeKubeconfig(`${dir}/admin.kubeconfig`);
    return new Kubectl(world, dir);
  }

  get dir(): string {
    return this.#dir;
  }

  /** Runs kubectl; kills it after `timeoutMs`. */
  async run(
    args: string[],
    options: { token?: string; stdin?: string; timeoutMs?: number } = {},
  ): Promise<KubectlResult> {
    let kubeconfig = `${this.#dir}/admin.kubeconfig`;
    if (options.token) {
      kubeconfig = `${this.#dir}/${options.token.slice(0, 12)}.kubeconfig`;
      await this.#world.writeKubeconfig(kubeconfig, { token: options.token });
    }
    const child = new Deno.Command("kubectl", {
      args: ["--kubeconfig", kubeconfig, "--cache-dir", `${this.#dir}/cache`, ...args],
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }, options.timeoutMs ?? 20_000);
    try {
      const out = await child.output();
      const decoder = new TextDecoder();
      return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a long-running kubectl (e.g. `get -w`) and returns its handle. */
  spawn(args: string[]): Deno.ChildProcess {
    return new Deno.Command("kubectl", {
      args: ["--kubeconfig", `${this.#dir}/admin.kubeconfig`, "--cache-dir", `${this.#dir}/cache`, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  async cleanup(): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** Waits until `check` holds, polling. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
