/**
 * @module
 * The HTTP transports the Quay client sends through. Deno's `fetch` with a shared
 * `Deno.createHttpClient` (connection reuse, extra CA certificates) is the default; when an admin
 * sets `insecureRegistry`, a `node:https` transport that skips certificate verification is used,
 * because Deno's fetch has no per-client switch for that. It lives in `insecure_transport.ts` and is
 * loaded on its first request: `node:https` brings Deno's Node compatibility layer (about 10 MiB
 * resident) into a process that otherwise has none.
 *
 * Both follow the process's proxy settings ({@linkcode configureProxy}, from `HTTPS_PROXY`,
 * `HTTP_PROXY`, `NO_PROXY` with Go's rules, see `proxy.ts`): the fetch transport keeps one pooled
 * client per proxy (or none), the insecure one opens an HTTP CONNECT tunnel itself. The Kubernetes
 * client builds its `Deno.HttpClient` through {@linkcode createDenoHttpClient} so it follows the same
 * rule. A failure through a proxy names the proxy (never its credentials).
 */
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
export function throughProxy(message: string, proxy: ProxyTarget | undefined): string {
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

export function describe(error: unknown): string {
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
 * A transport that does not verify the server's certificate (only for `insecureRegistry: true`); its
 * `node:https` implementation is loaded on the first request.
 */
export function createInsecureTransport(options: { proxy?: ProxyResolver } = {}): HttpTransport {
  const resolver = options.proxy ?? processProxy;
  let inner: Promise<HttpTransport> | undefined;
  return {
    async send(request) {
      inner ??= import("./insecure_transport.ts").then((m) => m.createNodeInsecureTransport(resolver));
      return await (await inner).send(request);
    },
    close() {
      inner?.then((t) => t.close(), () => {});
      inner = undefined;
    },
  };
}
