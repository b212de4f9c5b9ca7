/**
 * @module
 * The TLS front door of the test world's Quay. Clients connect here; TLS ends here (ALPN h2 and
 * http/1.1), and each connection's plaintext is piped to the inner plain-HTTP `Deno.serve` on
 * 127.0.0.1. It exists for two reasons:
 *
 * - Faults below HTTP, which a `Deno.serve` handler cannot produce: drop one client's connection
 *   without an answer (a real transport error for the client), or close the listening socket so
 *   connections are refused, and reopen it later on the same port.
 * - Latency. `Deno.serve` over TLS leaves Nagle on, and its responses stall ~44 ms on delayed ACKs
 *   (HTTP/1.1 from ~400 bytes, HTTP/2 from ~5 KB; docs/runtime.md). `node:tls` sockets take
 *   `setNoDelay`, and the plain inner hop does not stall, so no response shape has to be avoided.
 *   `Deno.listenTls` was tried and stalls the same way (its connections have no `setNoDelay`).
 *
 * The inner server sees each request's peer address, the front's upstream socket; the front maps
 * that port back to the client connection so a handler can drop it.
 *
 * Like the nginx in front of a real Quay (`keepalive_timeout 5`), the front closes a connection that
 * has carried no byte for 5 s while no request of it is being served. Without that, a client that
 * leaks connections (one transport per reconcile, as upstream's operator) holds three descriptors
 * of this process per connection until the process runs out of them.
 */
import net from "node:net";
import tls from "node:tls";

/** Options of {@linkcode startFront}. */
export interface FrontOptions {
  /** Port of the inner plain-HTTP server on 127.0.0.1. */
  upstreamPort: number;
  /** PEM certificate chain and key to serve. */
  certPem: string;
  keyPem: string;
  /** Port to listen on; 0 picks one. @default 0 */
  port?: number;
  /** Closes a connection idle this long with no request in flight; 0 never. @default 5000 */
  idleTimeoutMs?: number;
  /** Whether the inner server is serving a request that came through this upstream port. */
  busy?: (upstreamPort: number) => boolean;
}

/** A running front door. */
export interface Front {
  /** The listening port (stable across refuse/reopen). */
  readonly port: number;
  /** Drops the client connection whose upstream socket has this local port; `false` if unknown. */
  dropByUpstreamPort(port: number): boolean;
  /** Stops listening and drops every open connection (clients then get connection refused). */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  reopen(): Promise<void>;
  /** Stops everything; resolves once every socket has closed. */
  close(): Promise<void>;
}

interface Pipe {
  readonly client: tls.TLSSocket;
  readonly upstream: net.Socket;
  readonly closed: Promise<void>;
}

function listen(server: tls.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Starts a front door for the inner server. */
export async function startFront(options: FrontOptions): Promise<Front> {
  const pipes = new Set<Pipe>();
  const byUpstreamPort = new Map<number, Pipe>();
  let closed = false;

  function accept(client: tls.TLSSocket): void {
    if (closed) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host: "127.0.0.1", port: options.upstreamPort });
    upstream.setNoDelay(true);
    let upstreamPort: number | undefined;
    const done = Promise.all([
      new Promise<void>((resolve) => client.once("close", () => resolve())),
      new Promise<void>((resolve) => upstream.once("close", () => resolve())),
    ]).then(() => {
      pipes.delete(pipe);
      if (upstreamPort !== undefined) byUpstreamPort.delete(upstreamPort);
    });
    const pipe: Pipe = { client, upstream, closed: done };
    pipes.add(pipe);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
    const idleTimeoutMs = options.idleTimeoutMs ?? 5_000;
    if (idleTimeoutMs > 0) {
      // 'timeout' fires after idleTimeoutMs without a byte read or written on the client socket; a
      // request still being served (a latency or hang fault) keeps its connection, as in nginx.
      client.setTimeout(idleTimeoutMs);
      client.on("timeout", () => {
        if (upstreamPort !== undefined && options.busy?.(upstreamPort)) return;
        end();
      });
    }
    upstream.once("connect", () => {
      // Registered before any request byte reaches the inner server, so a handler always finds it.
      upstreamPort = upstream.localPort;
      if (upstreamPort !== undefined) byUpstreamPort.set(upstreamPort, pipe);
      client.pipe(upstream);
    });
    upstream.pipe(client);
  }

  function newServer(): tls.Server {
    const server = tls.createServer({
      cert: options.certPem,
      key: options.keyPem,
      ALPNProtocols: ["h2", "http/1.1"],
    }, accept);
    // A failed handshake (garbage, wrong CA on the client) must not take anything down.
    server.on("tlsClientError", (_error, socket) => socket.destroy());
    server.on("error", () => {});
    return server;
  }

  let server: tls.Server | null = newServer();
  const port = await listen(server, options.port ?? 0);

  async function stopListening(): Promise<void> {
    const s = server;
    server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async function dropAll(): Promise<void> {
    const all = [...pipes];
    for (const pipe of all) {
      pipe.client.destroy();
      pipe.upstream.destroy();
    }
    await Promise.all(all.map((p) => p.closed));
  }

  return {
    port,
    dropByUpstreamPort(upstreamPort: number): boolean {
      const pipe = byUpstreamPort.get(upstreamPort);
      if (!pipe) return false;
      pipe.client.destroy();
      pipe.upstream.destroy();
      return true;
    },
    async refuse(): Promise<void> {
      // server.close waits for open connections, so they are dropped concurrently.
      await Promise.all([stopListening(), dropAll()]);
    },
    async reopen(): Promise<void> {
      if (server || closed) return;
      server = newServer();
      await listen(server, port);
    },
    async close(): Promise<void> {
      closed = true;
      await Promise.all([stopListening(), dropAll()]);
    },
  };
}
