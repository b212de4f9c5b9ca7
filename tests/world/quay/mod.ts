/**
 * @module
 * The test world's Quay: Red Hat Quay's REST API (`/api/v1`) and Docker Registry v2 (`/v2`) on one
 * HTTPS host and port, in process, with its own CA, OAuth tokens and scopes, superuser rules and
 * robot permissions enforced as Quay enforces them, plus fault knobs (latency, server errors, 429s,
 * connection resets, outages) and a count of calls by route template.
 *
 * ```ts
 * const quay = await startQuayWorld();
 * const client = Deno.createHttpClient({ caCerts: [quay.caPem] });
 * await fetch(`${quay.url}/api/v1/user/`, { client, headers: { authorization: `Bearer ${quay.adminToken}` } });
 * quay.faults.failRoute("POST /api/v1/repository", { status: 500, times: 2 });
 * quay.calls(); // { "GET /api/v1/user/": 1 }
 * client.close();
 * await quay.close();
 * ```
 *
 * Layout: a TLS front door (`front.ts`, `node:tls` with Nagle off) pipes each client connection to
 * an inner plain-HTTP `Deno.serve`, so faults can drop a connection or refuse connections, which
 * an HTTP handler alone cannot do, and no response waits on delayed ACKs. The front offers HTTP/2,
 * so clients that negotiate it share one connection and a reset fails every request in flight on
 * it, as a load balancer dropping it would.
 */
import { createCertificateAuthority, issueServingCertificate } from "../../../src/certs/pki.ts";
import { apiErrorResponse, type ApiHandler, apiRoutes } from "./api.ts";
import { AUDITED_BODY_ROUTES, AuditLog } from "./audit_log.ts";
import { FaultPlan, type QuayFaults } from "./faults.ts";
import { startFront } from "./front.ts";
import { ApiProblem, csrfRefusal, htmlResponse, jsonResponse } from "./http_util.ts";
import {
  type NotificationDeliveryOptions,
  type NotificationHub,
  notificationHub,
  notificationRoutes,
} from "./notifications.ts";
import { registryErrorToResponse, type RegistryHandler, registryRoutes } from "./registry.ts";
import { type Area, areaOf, type RouteDef, Router } from "./router.ts";
import { ALL_SCOPES, ANONYMOUS, type QuayScope, QuayState } from "./state.ts";

export type { QuayScope } from "./state.ts";
export type {
  ErrorRateFault,
  FaultScope,
  LatencyFault,
  OutageOptions,
  QuayFaults,
  RateLimitFault,
  ResetFault,
  RouteFailure,
} from "./faults.ts";
export { ALL_SCOPES } from "./state.ts";

/** Options of {@linkcode startQuayWorld}. */
export interface QuayWorldOptions {
  /** Only superusers (token scope super:user) may create organizations (FEATURE_SUPERUSERS_ORG_CREATION_ONLY). @default false */
  superuserOrgCreationOnly?: boolean;
  /** Quay sends mail, so organization creation requires an unused e-mail. @default true */
  requireOrgEmail?: boolean;
  /** Page size of repository listings (next_page). @default 100 */
  repositoryPageSize?: number;
  /**
   * FEATURE_SUPERUSERS_FULL_ACCESS: a superuser token (with `super:user`) may manage robots,
   * prototypes and organizations it does not administer, and sees 404 rather than 403 for what is
   * absent. Quay's default is off; on here so the admin token meets the 404s of docs/quay-api.md. @default true
   */
  superuserFullAccess?: boolean;
  /**
   * How long a deleted organization's name stays taken (400 "Username is not available") before
   * Quay's namespace GC frees it; a real Quay takes up to about a minute. @default 0 (at once)
   */
  namespaceGcDelayMs?: number;
  /** Seed of the random fault knobs. @default 1 */
  seed?: number;
  /** Port on 127.0.0.1. @default 0 (any free port) */
  port?: number;
  /** More DNS names in the serving certificate (a name only a proxy resolves, in the proxy tests). */
  dnsNames?: readonly string[];
  /** Delivery of repository notifications (`notifications.ts`). */
  notifications?: NotificationDeliveryOptions;
  /** Closes a client connection idle this long between requests, as Quay's nginx (`keepalive_timeout 5`). @default 5000 */
  idleTimeoutMs?: number;
}

/** A running Quay world. */
export interface QuayWorld {
  /** `https://127.0.0.1:<port>`: API and registry on the same host and port, as in Quay. */
  readonly url: string;
  /** `127.0.0.1:<port>`. */
  readonly registryHost: string;
  /** PEM of its own CA (the serving certificate has SANs 127.0.0.1 and localhost). */
  readonly caPem: string;
  /** OAuth token of superuser `quayadmin` with every scope. */
  readonly adminToken: string;
  /** Creates a user (optionally superuser) and an OAuth access token for it with the given scopes. */
  createToken(options: { user: string; superuser?: boolean; scopes: readonly QuayScope[] }): string;
  /**
   * Revokes an OAuth access token. As on Quay, it then counts as no token: reads are served as to an
   * anonymous caller (401 where Quay requires a user), writes refused by the CSRF check (403).
   */
  revokeToken(token: string): void;
  /** Fault knobs; changes take effect on the next request. */
  readonly faults: QuayFaults;
  /**
   * Requests received, by `"METHOD template"` (e.g. `"GET /api/v1/organization/{org}"`,
   * `"PUT /v2/{name}/manifests/{reference}"`); unknown paths count as `"METHOD (unmatched)"`.
   * Requests a fault answered count too; connections refused during an outage do not.
   */
  calls(): Record<string, number>;
  /** Forgets the counts. */
  resetCalls(): void;
  /** Every `"METHOD template"` this world serves. */
  routes(): string[];
  /** Repository notifications: stored per repository, queued on push, delivered by a worker. */
  readonly notifications: NotificationHub;
  /** Stops everything; nothing is left running. */
  close(): Promise<void>;
}

type Handler = { area: "api"; fn: ApiHandler } | { area: "registry"; fn: RegistryHandler };

const HTML_PAGES: Record<number, string> = {
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  502: "502 Bad Gateway",
  503: "503 Service Temporarily Unavailable",
  504: "504 Gateway Time-out",
};

function proxyPage(status: number, retryAfterSeconds?: number): Response {
  const title = HTML_PAGES[status] ?? `${status} Error`;
  const html =
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n` +
    `<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  const headers: Record<string, string> = { server: "nginx" };
  if (retryAfterSeconds !== undefined) headers["retry-after"] = String(retryAfterSeconds);
  return htmlResponse(html, status, headers);
}

function quayErrorBody(status: number, area: Area, host: string, retryAfterSeconds?: number): Response {
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) headers["retry-after"] = String(retryAfterSeconds);
  if (area === "registry") {
    return jsonResponse({ errors: [{ code: "UNKNOWN", message: "unknown error", detail: {} }] }, status, {
      ...headers,
      "docker-distribution-api-version": "registry/2.0",
    });
  }
  if (status === 520) {
    const problem = new ApiProblem(520, "downstream_issue", "An error occurred in a downstream service.");
    return jsonResponse(problem.toBody(host), 520, headers);
  }
  return jsonResponse({ message: "Internal Server Error" }, status, headers);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Starts a Quay world on 127.0.0.1 and resolves once it accepts connections. */
export async function startQuayWorld(options: QuayWorldOptions = {}): Promise<QuayWorld> {
  const state = new QuayState({
    superuserOrgCreationOnly: options.superuserOrgCreationOnly ?? false,
    requireOrgEmail: options.requireOrgEmail ?? true,
    superuserFullAccess: options.superuserFullAccess ?? true,
    namespaceGcDelayMs: options.namespaceGcDelayMs ?? 0,
  });
  state.ensureUser("quayadmin", { superuser: true });
  const adminToken = state.issueToken("quayadmin", ALL_SCOPES);
  const notifications = notificationHub(state, options.notifications);

  const ca = await createCertificateAuthority({ commonName: "quay-world-ca" });
  const serving = await issueServingCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost", ...(options.dnsNames ?? [])],
    ipAddresses: ["127.0.0.1"],
  });

  const auditLog = new AuditLog();
  const routes: RouteDef<Handler>[] = [
    ...[
      ...apiRoutes({ repositoryPageSize: Math.max(1, options.repositoryPageSize ?? 100) }),
      ...auditLog.routes(),
    ].map((r) => ({
      method: r.method,
      template: r.template,
      handler: { area: "api" as const, fn: r.handler },
    })),
    ...notificationRoutes().map((r) => ({
      method: r.method,
      template: r.template,
      handler: { area: "api" as const, fn: r.handler },
    })),
    ...registryRoutes().map((r) => ({
      method: r.method,
      template: r.template,
      handler: { area: "registry" as const, fn: r.handler },
    })),
  ];
  const router = new Router(routes);
  const routeKeys = new Set(router.keys());
  const plan = new FaultPlan(options.seed ?? 1);
  const counts = new Map<string, number>();
  const held = new Set<() => void>();
  // Cuts latency sleeps short on close(). Request signals are not watched: Deno.serve (legacy mode)
  // also aborts them on successful responses and warns about listeners.
  const stopping = new AbortController();
  let closing = false;
  // Filled in once the front listens; requests cannot arrive before that.
  let host = "";
  let dropConnection: (upstreamPort: number) => void = () => {};

  function holdUntilReleased(): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        held.delete(release);
        resolve();
      };
      held.add(release);
    });
  }

  function releaseHeld(): void {
    for (const release of [...held]) release();
  }

  async function dispatch(req: Request, url: URL, peerPort: number): Promise<Response> {
    let match = router.match(req.method, url.pathname, url.search);
    // Flask answers HEAD on every GET route: the GET's status and headers, no body.
    const headViaGet = req.method === "HEAD" && match.kind === "method-not-allowed" &&
      router.match("GET", url.pathname).kind === "found";
    if (headViaGet) match = router.match("GET", url.pathname);
    const key = match.kind === "found"
      ? `${req.method} ${match.route.template}`
      : `${req.method} (unmatched)`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const area = areaOf(url.pathname);

    const delay = plan.delayFor(area);
    if (delay > 0) await sleep(delay, stopping.signal);
    let decision = plan.decide(key, area);
    while (decision.kind === "hang") {
      await holdUntilReleased();
      if (closing) return proxyPage(503);
      decision = plan.outage ? plan.decide(key, area) : { kind: "serve" };
    }
    switch (decision.kind) {
      case "refuse":
      case "reset":
        dropConnection(peerPort);
        return proxyPage(503);
      case "throttle":
        return proxyPage(429, decision.retryAfterSeconds);
      case "error":
        return decision.body === "html"
          ? proxyPage(decision.status, decision.retryAfterSeconds)
          : quayErrorBody(decision.status, area, host, decision.retryAfterSeconds);
      case "serve":
        break;
    }

    if (match.kind === "redirect") {
      return new Response(null, {
        status: 308,
        headers: { location: match.location, "content-length": "0" },
      });
    }
    if (match.kind !== "found") {
      if (area === "registry") {
        const [code, message, status] = match.kind === "method-not-allowed"
          ? ["UNSUPPORTED", "The operation is unsupported.", 405]
          : ["NAME_UNKNOWN", "repository name not known to registry", 404];
        return jsonResponse({ errors: [{ code, message, detail: {} }] }, status, {
          "docker-distribution-api-version": "registry/2.0",
        });
      }
      return match.kind === "method-not-allowed"
        ? jsonResponse({ message: "The method is not allowed for the requested URL." }, 405)
        : jsonResponse(new ApiProblem(404, "not_found", "Not Found").toBody(host), 404);
    }
    const handler = match.route.handler;
    if (handler.area === "registry") {
      try {
        const response = await handler.fn({ req, url, params: match.params, state, host });
        auditLog.recordRegistry(key, match.params, response.status);
        return response;
      } catch (error) {
        const answer = registryErrorToResponse(error, { host, req });
        if (answer) return answer;
        throw error;
      }
    }
    try {
      const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "")?.[1];
      // Quay treats a missing, bad, expired or revoked token alike, as an anonymous caller: reads
      // are served (401 where a user is required), writes meet the CSRF check.
      const identity = (bearer ? state.identityForToken(bearer) : undefined) ?? ANONYMOUS;
      if (identity === ANONYMOUS && req.method !== "GET" && req.method !== "HEAD") return csrfRefusal();
      // The audit log records what a call changed; two routes name the organization in the body.
      const audited = AUDITED_BODY_ROUTES.has(key) ? req.clone().json().catch(() => undefined) : undefined;
      const response = await handler.fn({ req, url, params: match.params, identity, state, host });
      auditLog.record(key, match.params, await audited, identity, response.status);
      return headViaGet
        ? new Response(null, { status: response.status, headers: response.headers })
        : response;
    } catch (error) {
      const answer = apiErrorResponse(error, host);
      if (answer) return answer;
      throw error;
    }
  }

  /** Requests being served, by the front's upstream port they came through (its idle timeout). */
  const inFlight = new Map<number, number>();
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError() {
      return jsonResponse({ message: "Internal Server Error" }, 500);
    },
  }, async (req, info) => {
    const peerPort = (info.remoteAddr as Deno.NetAddr).port;
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return jsonResponse({ message: "Bad Request" }, 400);
    }
    inFlight.set(peerPort, (inFlight.get(peerPort) ?? 0) + 1);
    try {
      return await dispatch(req, url, peerPort);
    } catch (error) {
      // Garbage must never take the server down: anything unexpected is Quay's generic 500.
      return jsonResponse({ message: "Internal Server Error", error: String(error) }, 500);
    } finally {
      const left = (inFlight.get(peerPort) ?? 1) - 1;
      if (left > 0) inFlight.set(peerPort, left);
      else inFlight.delete(peerPort);
    }
  });

  let front;
  try {
    front = await startFront({
      upstreamPort: (inner.addr as Deno.NetAddr).port,
      certPem: serving.certPem,
      keyPem: serving.keyPem,
      port: options.port ?? 0,
      idleTimeoutMs: options.idleTimeoutMs,
      busy: (port) => inFlight.has(port),
    });
  } catch (error) {
    await inner.shutdown();
    throw error;
  }
  const frontDoor = front;
  host = `127.0.0.1:${frontDoor.port}`;
  dropConnection = (port) => {
    frontDoor.dropByUpstreamPort(port);
  };

  const faults: QuayFaults = {
    latency: (fault) => plan.setLatency(fault),
    errorRate: (fault) => plan.setErrorRate(fault),
    resetRate: (fault) => plan.setResetRate(fault),
    throttleNext: (count, opts) => plan.throttleNext(count, opts),
    rateLimit: (fault) => plan.setRateLimit(fault),
    failRoute(route, failure) {
      if (!routeKeys.has(route)) {
        throw new RangeError(`Unknown route "${route}"; routes are e.g. "POST /api/v1/repository"`);
      }
      plan.setRouteFailure(route, failure);
    },
    async outage(opts = {}) {
      const mode = opts.mode ?? "refuse";
      const scope = opts.scope ?? "all";
      plan.outage = { mode, scope };
      if (mode === "refuse" && scope === "all") await frontDoor.refuse();
    },
    async restore() {
      plan.outage = null;
      releaseHeld();
      if (!closing) await frontDoor.reopen();
    },
    async clear() {
      plan.clear();
      await this.restore();
    },
    injected: () => ({ ...plan.counts }),
  };

  return {
    url: `https://${host}`,
    registryHost: host,
    caPem: ca.certPem,
    adminToken,
    createToken(opts) {
      state.ensureUser(opts.user, opts.superuser === undefined ? {} : { superuser: opts.superuser });
      return state.issueToken(opts.user, opts.scopes);
    },
    revokeToken(token) {
      state.tokens.delete(token);
    },
    faults,
    calls: () => Object.fromEntries(counts),
    resetCalls: () => counts.clear(),
    routes: () => [...routeKeys],
    notifications,
    async close() {
      if (closing) return;
      closing = true;
      plan.outage = null;
      stopping.abort();
      releaseHeld();
      await notifications.close();
      await frontDoor.close();
      await inner.shutdown();
    },
  };
}
