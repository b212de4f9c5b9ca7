/**
 * @module
 * The transport of `insecureRegistry: true` (see `transport.ts`): `node:https` with certificate
 * verification off, because Deno's fetch has no per-client switch for that, and its own HTTP
 * CONNECT tunnel through a proxy. Loaded only when such an integration sends its first request.
 */
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { ProxyResolver, ProxyTarget } from "./proxy.ts";
import {
  describe,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  throughProxy,
  TransportError,
} from "./transport.ts";

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

/** The insecure transport itself, proxied as `resolver` decides. */
export function createNodeInsecureTransport(resolver: ProxyResolver): HttpTransport {
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
