/**
 * @module
 * The HTTP transports the Quay client sends through. Deno's `fetch` with a shared
 * `Deno.createHttpClient` (connection reuse, extra CA certificates) is the default; when an admin
 * sets `insecureRegistry`, a `node:https` transport that skips certificate verification is used,
 * because Deno's fetch has no per-client switch for that.
 *
 * Both follow the process's proxy settings ({@linkcode configureProxy}, from `HTTPS_PROXY`,
 * `HTTP_PROXY`, `NO_PROXY` with Go's rules, see `proxy.ts`): the fetch transport keeps one pooled
 * client per proxy (or none), the insecure one opens an HTTP CONNECT tunnel itself. The Kubernetes
 * client builds its `Deno.HttpClient` through {@linkcode createDenoHttpClient} so it follows the same
 * rule. A failure through a proxy names the proxy (never its credentials).
 */
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { type ProxyEnvironment, ProxyResolver, type ProxyTarget } from "./proxy.ts";

let processProxy = new ProxyResolver();

/**
 * Sets the proxy settings of every transport and Kubernetes client created afterwards (the process's
 * `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, read by `src/config.ts`).
 */
export function configureProxy(env: ProxyEnvironment): void {
  processProxy = new ProxyResolver(env);
}

/** The process's proxy settings. */
export function currentProxy(): ProxyResolver {
  return processProxy;
}

/** TLS material of a {@linkcode createDenoHttpClient} client. */
export interface DenoClientTls {
  caCerts?: readonly string[];
  cert?: string;
  key?: string;
  /** Milliseconds an idle pooled connection is kept. */
  poolIdleTimeout?: number;
}

/**
 * A `Deno.HttpClient` for requests to `url`'s origin, through the proxy the settings choose for it.
 * Returns the proxy too (to name it in errors).
 */
export function createDenoHttpClient(
  url: string,
  tlsOptions: DenoClientTls = {},
  resolver: ProxyResolver = processProxy,
): { client: Deno.HttpClient; proxy: ProxyTarget | undefined } {
  const proxy = resolver.proxyFor(url);
  return { client: newDenoClient(tlsOptions, proxy), proxy };
}

function newDenoClient(tlsOptions: DenoClientTls, proxy: ProxyTarget | undefined): Deno.HttpClient {
  return Deno.createHttpClient({
    caCerts: [...(tlsOptions.caCerts ?? [])],
    ...(tlsOptions.cert && tlsOptions.key ? { cert: tlsOptions.cert, key: tlsOptions.key } : {}),
    ...(tlsOptions.poolIdleTimeout !== undefined ? { poolIdleTimeout: tlsOptions.poolIdleTimeout } : {}),
    ...(proxy
      ? {
        proxy: {
          url: proxy.url,
          ...(proxy.username !== undefined
            ? { basicAuth: { username: proxy.username, password: proxy.password ?? "" } }
            : {}),
        },
      }
      : {}),
  });
}

/** Prefixes a transport failure with the proxy it went through. */
function throughProxy(message: string, proxy: ProxyTarget | undefined): string {
  return proxy ? `through the proxy ${proxy.url}: ${message}` : message;
}

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
  /** The proxy the request went through (`scheme://host:port`, no credentials), if any. */
  readonly proxy: string | undefined;
  constructor(message: string, options: { cause?: unknown; timedOut?: boolean; proxy?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = "TransportError";
    this.timedOut = options.timedOut ?? false;
    this.proxy = options.proxy;
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
  /** Proxy settings. @default the process's ({@linkcode configureProxy}) */
  proxy?: ProxyResolver;
}

/** A transport over Deno's fetch with one pooled client per proxy (or direct). */
export function createFetchTransport(options: FetchTransportOptions = {}): HttpTransport {
  // Idle connections are dropped before common servers drop them (gunicorn, which Quay runs, after
  // 2 s), so a request rarely goes out on a connection the server is closing at that moment.
  const resolver = options.proxy ?? processProxy;
  const clients = new Map<string, Deno.HttpClient>();
  const clientFor = (proxy: ProxyTarget | undefined) => {
    const key = proxy ? `${proxy.username ?? ""}@${proxy.url}` : "";
    let client = clients.get(key);
    if (!client) {
      clients.set(
        key,
        client = newDenoClient({ caCerts: options.caCerts ?? [], poolIdleTimeout: 1_500 }, proxy),
      );
    }
    return client;
  };
  return {
    async send(request) {
      let response: Response;
      const proxy = resolver.proxyFor(request.url);
      const client = clientFor(proxy);
      try {
        response = await fetch(request.url, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: request.signal,
          client,
        });
      } catch (error) {
        throw new TransportError(throughProxy(describe(error), proxy), {
          proxy: proxy?.url,
          cause: error,
          timedOut: request.signal.aborted,
        });
      }
      try {
        return { status: response.status, headers: response.headers, text: await response.text() };
      } catch (error) {
        throw new TransportError(throughProxy(describe(error), proxy), {
          proxy: proxy?.url,
          cause: error,
          timedOut: request.signal.aborted,
        });
      }
    },
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}

/**
 * Opens a TLS connection to `host:port` through an HTTP CONNECT tunnel of `proxy`, without verifying
 * the server's certificate (only the insecure transport needs this: Deno's fetch tunnels itself).
 */
function tunnel(proxy: ProxyTarget, host: string, port: number, signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const proxyUrl = new URL(proxy.url);
    const proxyPort = Number(proxyUrl.port || (proxyUrl.protocol === "https:" ? 443 : 80));
    const socket: net.Socket = proxyUrl.protocol === "https:"
      ? tls.connect({ host: proxyUrl.hostname, port: proxyPort, servername: proxyUrl.hostname })
      : net.connect({ host: proxyUrl.hostname, port: proxyPort });
    const fail = (message: string) => {
      socket.destroy();
      reject(
        new TransportError(`through the proxy ${proxy.url}: ${message}`, {
          timedOut: signal.aborted,
          proxy: proxy.url,
        }),
      );
    };
    const onAbort = () => fail("request deadline exceeded");
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (e: Error) => fail(describe(e)));
    const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const auth = proxy.username !== undefined
      ? `Proxy-Authorization: Basic ${btoa(`${proxy.username}:${proxy.password ?? ""}`)}\r\n`
      : "";
    socket.once(proxyUrl.protocol === "https:" ? "secureConnect" : "connect", () => {
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
    let head = "";
    const onData = (chunk: Uint8Array) => {
      head += new TextDecoder().decode(chunk);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      if (status !== "200") {
        fail(`CONNECT ${authority} answered ${head.slice(0, end).split("\r\n")[0]}`);
        return;
      }
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      // With verification off no CA is consulted; an explicit empty list avoids reading the system
      // store (which needs --allow-sys).
      const secure = tls.connect({
        socket,
        servername: net.isIP(host) ? undefined : host,
        rejectUnauthorized: false,
        ca: [],
      });
      secure.once("secureConnect", () => resolve(secure));
      secure.once("error", (e: Error) => fail(describe(e)));
    };
    socket.on("data", onData);
  });
}

/** A transport that does not verify the server's certificate (only for `insecureRegistry: true`). */
export function createInsecureTransport(options: { proxy?: ProxyResolver } = {}): HttpTransport {
  const resolver = options.proxy ?? processProxy;
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
        const proxy = resolver.proxyFor(url);
        if (proxy) {
          sendThroughTunnel(proxy, url, request).then(resolve, reject);
          return;
        }
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

/** One request of the insecure transport over its own CONNECT tunnel (no pooling through a proxy). */
async function sendThroughTunnel(proxy: ProxyTarget, url: URL, request: HttpRequest): Promise<HttpResponse> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const socket = await tunnel(proxy, host, port, request.signal);
  return await new Promise<HttpResponse>((resolve, reject) => {
    const req = https.request({
      hostname: host,
      port,
      path: url.pathname + url.search,
      method: request.method,
      headers: { ...request.headers, Connection: "close" },
      createConnection: () => socket,
      rejectUnauthorized: false,
      ca: [],
    } as https.RequestOptions, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      res.on("end", () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (typeof v === "string") headers.set(k, v);
          else if (Array.isArray(v)) { for (const one of v) headers.append(k, one); }
        }
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, headers, text: new TextDecoder().decode(concat(chunks)) });
      });
      res.on(
        "error",
        (e: Error) =>
          reject(new TransportError(throughProxy(describe(e), proxy), { cause: e, proxy: proxy.url })),
      );
    });
    const onAbort = () => req.destroy(new Error("Request deadline exceeded"));
    request.signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", (e: Error) => {
      request.signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(
        new TransportError(throughProxy(describe(e), proxy), {
          cause: e,
          timedOut: request.signal.aborted,
          proxy: proxy.url,
        }),
      );
    });
    req.on("close", () => request.signal.removeEventListener("abort", onAbort));
    if (request.body !== undefined) req.write(request.body);
    req.end();
  });
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
