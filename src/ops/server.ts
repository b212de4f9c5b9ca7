/**
 * @module
 * The plain-HTTP operations endpoints: `/metrics` (Prometheus text), `/healthz` (the process and
 * its caches are alive) and `/readyz` (the first full list is in the caches and, when enabled, the
 * webhook is serving). Three GET routes need no router: a Hono app here kept Hono and the npm module
 * machinery resident in every process (about 3 MiB), although only the webhook uses Hono otherwise.
 */
import { type Metrics, METRICS_CONTENT_TYPE } from "./metrics.ts";

/** What the probes ask. */
export interface Probes {
  /** Liveness: false only when the process should be restarted. */
  healthy(): { ok: boolean; reason?: string };
  /** Readiness. */
  ready(): { ok: boolean; reason?: string };
}

/** The operations app: one handler for `Deno.serve`. */
export interface OpsApp {
  fetch(request: Request): Response;
}

const TEXT = { "content-type": "text/plain; charset=UTF-8" } as const;

/** The operations app. */
export function createOpsApp(metrics: Metrics, probes: Probes): OpsApp {
  const routes: Record<string, () => { status: number; body: string; headers: Record<string, string> }> = {
    "/metrics": () => ({
      status: 200,
      body: metrics.render(),
      headers: { "content-type": METRICS_CONTENT_TYPE },
    }),
    "/healthz": () => {
      const h = probes.healthy();
      return { status: h.ok ? 200 : 500, body: h.ok ? "ok" : `unhealthy: ${h.reason ?? ""}`, headers: TEXT };
    },
    "/readyz": () => {
      const r = probes.ready();
      return { status: r.ok ? 200 : 503, body: r.ok ? "ok" : `not ready: ${r.reason ?? ""}`, headers: TEXT };
    },
  };
  return {
    fetch(request) {
      const path = new URL(request.url).pathname;
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route || (request.method !== "GET" && request.method !== "HEAD")) {
        return new Response("404 Not Found", { status: 404, headers: TEXT });
      }
      const { status, body, headers } = route();
      return new Response(request.method === "HEAD" ? null : body, { status, headers });
    },
  };
}
