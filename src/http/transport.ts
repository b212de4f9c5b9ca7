/**
 * @module
 * The HTTP transports the Quay client sends through. Deno's `fetch` with a shared
 * `Deno.createHttpClient` (connection reuse, extra CA certificates) is the default; when an admin
 * sets `insecureRegistry`, a `node:https` transport that skips certificate verification is used,
 * because Deno's fetch has no per-client switch for that.
 */
import https from "node:https";

/** One request. Bodies are small JSON documents, so strings suffice. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
  readonly signal: AbortSignal;
}

/** One response, read to the end. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** Sends a request; rejects with {@linkcode TransportError} when no HTTP answer arrived. */
export interface HttpTransport {
  send(request: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

/** No HTTP answer: connection refused or reset, TLS failure, DNS failure, timeout. */
export class TransportError extends Error {
  /** True when the request's own deadline expired. */
  readonly timedOut: boolean;
  constructor(message: string, options: { cause?: unknown; timedOut?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = "TransportError";
    this.timedOut = options.timedOut ?? false;
  }
}

function describe(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    parts.push(e.message);
    e = e.cause;
  }
  return parts.join(": ") || String(error);
}

/** Options for {@linkcode createFetchTransport}. */
export interface FetchTransportOptions {
  /** PEM certificates trusted in addition to the system store. */
  caCerts?: readonly string[];
}

/** A transport over Deno's fetch with one pooled client. */
export function createFetchTransport(options: FetchTransportOptions = {}): HttpTransport {
  // Idle connections are dropped before common servers drop them (gunicorn, which Quay runs, after
  // 2 s), so a request rarely goes out on a connection the server is closing at that moment.
  const client = Deno.createHttpClient({ caCerts: [...(options.caCerts ?? [])], poolIdleTimeout: 1_500 });
  return {
    async send(request) {
      let response: Response;
      try {
        response = await fetch(request.url, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: request.signal,
          client,
        });
      } catch (error) {
        throw new TransportError(describe(error), { cause: error, timedOut: request.signal.aborted });
      }
      try {
        return { status: response.status, headers: response.headers, text: await response.text() };
      } catch (error) {
        throw new TransportError(describe(error), { cause: error, timedOut: request.signal.aborted });
      }
    },
    close() {
      client.close();
    },
  };
}

/** A transport that does not verify the server's certificate (only for `insecureRegistry: true`). */
export function createInsecureTransport(): HttpTransport {
  // An explicit (empty) CA list: without one, Deno's node:tls reads the system root store, which
  // needs --allow-sys; with verification off, no CA is consulted anyway.
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, ca: [] });
  return {
    send(request) {
      return new Promise<HttpResponse>((resolve, reject) => {
        if (request.signal.aborted) {
          reject(new TransportError("Request aborted before sending", { timedOut: true }));
          return;
        }
        const url = new URL(request.url);
        const req = https.request({
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port || undefined,
          path: url.pathname + url.search,
          method: request.method,
          headers: request.headers,
          agent: url.protocol === "https:" ? agent : undefined,
          rejectUnauthorized: false,
          ca: [],
        }, (res) => {
          const chunks: Uint8Array[] = [];
          res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
          res.on("end", () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (typeof v === "string") headers.set(k, v);
              else if (Array.isArray(v)) { for (const one of v) headers.append(k, one); }
            }
            const text = new TextDecoder().decode(concat(chunks));
            resolve({ status: res.statusCode ?? 0, headers, text });
          });
          res.on("error", (e: Error) => reject(new TransportError(describe(e), { cause: e })));
        });
        const onAbort = () => req.destroy(new Error("Request deadline exceeded"));
        request.signal.addEventListener("abort", onAbort, { once: true });
        req.on("error", (e: Error) => {
          request.signal.removeEventListener("abort", onAbort);
          reject(new TransportError(describe(e), { cause: e, timedOut: request.signal.aborted }));
        });
        req.on("close", () => request.signal.removeEventListener("abort", onAbort));
        if (request.body !== undefined) req.write(request.body);
        req.end();
      });
    },
    close() {
      agent.destroy();
    },
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
