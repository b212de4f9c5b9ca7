/**
 * @module
 * HTTPS serving for the webhook with certificate rotation that fails no request on kube-apiserver's
 * keep-alive connections. `Deno.serve` fixes its certificate at listen time and Deno 2.9 offers no
 * public way to swap it (its SNI resolver hook is neither reachable from `Deno.serve` nor
 * uncached), so a rotation serves the new pair from a second `Deno.serve` on the same port
 * (`SO_REUSEPORT`) and retires the old one:
 *
 * 1. the new listener starts taking new connections;
 * 2. for a grace period every response of the old listener carries `Connection: close`, so each
 *    busy keep-alive connection ends cleanly after its current request and the client reconnects;
 * 3. the old listener shuts down: in-flight requests finish, connections left idle are closed.
 *
 * Without step 2, `shutdown()` closes idle keep-alive connections while a client may already be
 * writing its next request on one, and Go clients (kube-apiserver) do not retry a POST that got EOF:
 * measured about 12 failed requests per rotation at 16 connections. The same retirement runs on
 * `close()`.
 *
 * `reusePort` on a TLS listener needs `--unstable-net` in Deno 2.9, and without it Deno exits the
 * process (code 70) instead of throwing, so availability is probed first. Without it the old
 * listener is retired, then closed just before the new one binds: new connections are refused for
 * about a millisecond.
 *
 * Known limit: Linux resets connections that sit, handshake done but not yet accepted, in a closing
 * listener's queue, unless `net.ipv4.tcp_migrate_req=1`. It takes a new connection arriving within
 * about a millisecond of the old listener's close.
 *
 * The TLS listeners bind a loopback port; the public address is a connection guard
 * (`../http/guard.ts`) that enforces the first-byte, request and idle timeouts `Deno.serve` lacks,
 * so slow or silent clients cannot hold connections open.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { messageOf } from "../errors.ts";
import { type ConnectionGuard, guardConnections, type GuardReason } from "../http/guard.ts";
import { type Logger, silentLogger } from "../log.ts";

/** The certificate or key cannot be served (unparseable, or the key does not match the certificate). */
export class CertificateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CertificateError";
  }
}

/** The server was closed; it cannot rotate any more. */
export class ServerClosedError extends Error {
  constructor() {
    super("webhook server is closed");
    this.name = "ServerClosedError";
  }
}

/** What a served certificate is, for logs. */
export interface CertificateSummary {
  readonly subject: string;
  readonly serialNumber: string;
  readonly notAfter: Date;
}

/**
 * Checks that `certPem` and `keyPem` parse and belong together (RSA, EC or Ed25519; PKCS#1, SEC1 or
 * PKCS#8), so a half-written pair is never served. Throws {@linkcode CertificateError}.
 */
export function checkKeyPair(certPem: string, keyPem: string): CertificateSummary {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new CertificateError(`certificate does not parse: ${messageOf(cause)}`, { cause });
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (cause) {
    throw new CertificateError(`private key does not parse: ${messageOf(cause)}`, { cause });
  }
  if (!matches) throw new CertificateError("private key does not match the certificate");
  return { subject: cert.subject, serialNumber: cert.serialNumber, notAfter: new Date(cert.validTo) };
}

/**
 * True when this Deno lets a TLS listener set `SO_REUSEPORT` (`--unstable-net`). Probed through an
 * API the same flag exposes, because the listener call itself exits the process when it is off.
 */
export function reusePortAvailable(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).QuicEndpoint === "function";
}

/** Options for {@linkcode serveWebhook}. */
export interface WebhookServerOptions {
  /** Handles each request, e.g. a Hono app's `fetch`. */
  handler: (request: Request) => Response | Promise<Response>;
  /** PEM certificate chain and private key served at start. */
  certPem: string;
  keyPem: string;
  /** Address to listen on. @default "0.0.0.0" */
  hostname?: string;
  /** Port; 0 picks a free one (kept across rotations). @default 8443 */
  port?: number;
  /** @default silentLogger */
  logger?: Logger;
  /**
   * How long a retiring listener answers with `Connection: close` before it shuts down, on rotation
   * and on close. Longer moves more idle keep-alive connections off cleanly. @default 1000
   */
  drainGraceMs?: number;
  /**
   * Rotate by overlapping listeners on one port (`SO_REUSEPORT`). Only honoured where the runtime
   * allows it. @default true when `--unstable-net` is on
   */
  reusePort?: boolean;
  /**
   * Connection timeouts enforced in front of the listener (see `../http/guard.ts`); `false` serves
   * the listener directly (tests of the rotation itself). @default {}
   */
  guard?: false | {
    firstByteTimeoutMs?: number;
    requestTimeoutMs?: number;
    idleTimeoutMs?: number;
    maxConnections?: number;
  };
  /** Called for each connection the guard closes. */
  onGuardClose?: (reason: GuardReason) => void;
}

/** A running HTTPS webhook server. */
export interface WebhookServer {
  /** The bound address (the port stays the same across rotations). */
  readonly addr: Deno.NetAddr;
  /** The certificate being served to new connections. */
  readonly certificate: CertificateSummary;
  /** True when rotations overlap listeners, so no connection is refused during one. */
  readonly seamlessRotation: boolean;
  /**
   * Serves a new pair. New connections may get it at once and all get it once this resolves (after
   * the drain grace period); the old listener's in-flight requests finish in the background. Throws
   * {@linkcode CertificateError}, and keeps serving the old pair, when the pair is unusable.
   * Rotations are serialized.
   */
  rotate(certPem: string, keyPem: string): Promise<void>;
  /** Retires the listener (grace period), then resolves when every in-flight request is answered. */
  close(): Promise<void>;
}

function internalError(): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"kind":"Status","status":"Failure","code":500}'));
      controller.close();
    },
  });
  return new Response(body, { status: 500, headers: { "content-type": "application/json" } });
}

/** Time for a shut-down listener to actually close (measured: one event loop turn). */
const LISTENER_CLOSE_MS = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withConnectionClose(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    // Immutable headers (a fetched Response): copy them.
    const headers = new Headers(response.headers);
    headers.set("connection", "close");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/** One listener and whether it is being retired. */
interface Generation {
  readonly server: Deno.HttpServer<Deno.NetAddr>;
  readonly state: { retiring: boolean };
}

/** Serves `handler` over HTTPS with rotatable in-memory certificates. */
export function serveWebhook(options: WebhookServerOptions): WebhookServer {
  const logger = options.logger ?? silentLogger;
  const hostname = options.hostname ?? "0.0.0.0";
  const handler = options.handler;
  const graceMs = options.drainGraceMs ?? 1000;
  const seamless = (options.reusePort ?? true) && reusePortAvailable();
  let certificate = checkKeyPair(options.certPem, options.keyPem);
  let closed = false;
  let closing: Promise<void> | undefined;
  let chain: Promise<void> = Promise.resolve();
  const draining = new Set<Promise<void>>();

  function listen(port: number, certPem: string, keyPem: string): Generation {
    const bind = guarded ? "127.0.0.1" : hostname;
    const state = { retiring: false };
    function closing(response: Response): Response {
      return state.retiring ? withConnectionClose(response) : response;
    }
    const server = Deno.serve({
      hostname: bind,
      port,
      reusePort: seamless,
      cert: certPem,
      key: keyPem,
      onListen: () => {},
      onError: (error) => {
        logger.error("webhook handler failed", { error: messageOf(error) });
        return internalError();
      },
    }, (request) => {
      const result = handler(request);
      // The retirement flag is read when the response is ready, so a request that started before
      // the rotation still closes its connection.
      return result instanceof Promise ? result.then(closing) : closing(result);
    });
    return { server, state };
  }

  /** Binds, retrying while the previous listener of the port is still closing (non-seamless rotation). */
  async function listenWhenFree(port: number, certPem: string, keyPem: string): Promise<Generation> {
    for (let attempt = 0;; attempt++) {
      try {
        return listen(port, certPem, keyPem);
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse) || attempt >= 1000) throw error;
        await sleep(1);
      }
    }
  }

  const guarded = options.guard !== false;
  let current: Generation;
  let guard: ConnectionGuard | undefined;
  try {
    current = listen(guarded ? 0 : options.port ?? 8443, options.certPem, options.keyPem);
  } catch (cause) {
    throw new CertificateError(`cannot serve on ${hostname}:${options.port ?? 8443}: ${messageOf(cause)}`, {
      cause,
    });
  }
  const inner = current.server.addr;
  if (guarded) {
    try {
      guard = guardConnections({
        hostname,
        port: options.port ?? 8443,
        targetPort: () => inner.port,
        ...(options.guard === undefined ? {} : options.guard),
        onClose: (reason) => {
          logger.debug("webhook connection closed by the guard", { reason });
          options.onGuardClose?.(reason);
        },
      });
    } catch (cause) {
      await0(current.server.shutdown());
      throw new CertificateError(`cannot serve on ${hostname}:${options.port ?? 8443}: ${messageOf(cause)}`, {
        cause,
      });
    }
  }
  const addr = guard?.addr ?? inner;
  const address = `${addr.hostname}:${addr.port}`;
  logger.info("webhook serving", { address, seamlessRotation: seamless, ...describe(certificate) });
  let served = { certPem: options.certPem, keyPem: options.keyPem };

  /** Answers with `Connection: close` for the grace period, then shuts down in the background. */
  async function retire(generation: Generation): Promise<void> {
    generation.state.retiring = true;
    await sleep(graceMs);
    const done: Promise<void> = generation.server.shutdown().catch((error) => {
      logger.warn("webhook listener drain failed", { error: messageOf(error) });
    }).finally(() => draining.delete(done));
    draining.add(done);
    // shutdown() closes the listener on a later turn of the event loop; until then new connections
    // may still land on it.
    await sleep(LISTENER_CLOSE_MS);
  }

  async function rotateNow(certPem: string, keyPem: string): Promise<void> {
    if (closed) throw new ServerClosedError();
    const next = checkKeyPair(certPem, keyPem);
    const previous = current;
    if (seamless) {
      try {
        current = listen(inner.port, certPem, keyPem);
      } catch (cause) {
        throw new CertificateError(`cannot serve the new certificate: ${messageOf(cause)}`, { cause });
      }
      certificate = next;
      await retire(previous);
    } else {
      await retire(previous);
      try {
        current = await listenWhenFree(inner.port, certPem, keyPem);
      } catch (cause) {
        // Never stay without a listener: go back to the pair that worked.
        current = await listenWhenFree(inner.port, served.certPem, served.keyPem);
        throw new CertificateError(`cannot serve the new certificate: ${messageOf(cause)}`, { cause });
      }
      certificate = next;
    }
    served = { certPem, keyPem };
    logger.info("webhook certificate rotated", { address, ...describe(next) });
  }

  return {
    addr,
    seamlessRotation: seamless,
    get certificate() {
      return certificate;
    },
    rotate(certPem, keyPem) {
      const run = chain.then(() => rotateNow(certPem, keyPem));
      chain = run.catch(() => {});
      return run;
    },
    close() {
      closing ??= (async () => {
        closed = true;
        await chain;
        await retire(current);
        logger.info("webhook stopped accepting", { address });
        while (draining.size > 0) await Promise.all([...draining]);
        await guard?.close();
      })();
      return closing;
    },
  };
}

function await0(p: Promise<unknown>): void {
  p.catch(() => {});
}

function describe(certificate: CertificateSummary): Record<string, unknown> {
  return {
    subject: certificate.subject,
    serialNumber: certificate.serialNumber,
    notAfter: certificate.notAfter.toISOString(),
  };
}
