/**
 * @module
 * The plain-HTTP operations endpoints: `/metrics` (Prometheus text), `/healthz` (the process and
 * its caches are alive) and `/readyz` (the first full list is in the caches and, when enabled, the
 * webhook is serving). Served by Hono; tested in-process with `app.request()`.
 */
import { Hono } from "hono";
import { type Metrics, METRICS_CONTENT_TYPE } from "./metrics.ts";

/** What the probes ask. */
export interface Probes {
  /** Liveness: false only when the process should be restarted. */
  healthy(): { ok: boolean; reason?: string };
  /** Readiness. */
  ready(): { ok: boolean; reason?: string };
}

/** The operations app. */
export function createOpsApp(metrics: Metrics, probes: Probes): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => c.body(metrics.render(), 200, { "content-type": METRICS_CONTENT_TYPE }));
  app.get("/healthz", (c) => {
    const h = probes.healthy();
    return c.text(h.ok ? "ok" : `unhealthy: ${h.reason ?? ""}`, h.ok ? 200 : 500);
  });
  app.get("/readyz", (c) => {
    const r = probes.ready();
    return c.text(r.ok ? "ok" : `not ready: ${r.reason ?? ""}`, r.ok ? 200 : 503);
  });
  return app;
}
