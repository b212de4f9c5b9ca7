import assert from "node:assert/strict";
import { Metrics, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { createOpsApp } from "./server.ts";

Deno.test("ops endpoints: metrics, probes with their reasons, 404 for anything else", async () => {
  let healthy = { ok: true } as { ok: boolean; reason?: string };
  let ready = { ok: false, reason: "caches not synced" } as { ok: boolean; reason?: string };
  const metrics = new Metrics({});
  metrics.kubeRequests.inc({ verb: "list", resource: "namespaces", code: "200" });
  const app = createOpsApp(metrics, { healthy: () => healthy, ready: () => ready });
  const get = (path: string, method = "GET") => app.fetch(new Request(`http://127.0.0.1${path}`, { method }));

  const scrape = get("/metrics");
  assert.equal(scrape.status, 200);
  assert.equal(scrape.headers.get("content-type"), METRICS_CONTENT_TYPE);
  assert.match(await scrape.text(), /resource="namespaces"/);

  assert.deepEqual([get("/healthz").status, await get("/healthz").text()], [200, "ok"]);
  const notReady = get("/readyz");
  assert.deepEqual([notReady.status, await notReady.text()], [503, "not ready: caches not synced"]);
  ready = { ok: true };
  healthy = { ok: false, reason: "lease renewals stalled" };
  assert.deepEqual([get("/readyz").status, await get("/readyz").text()], [200, "ok"]);
  assert.deepEqual([get("/healthz").status, await get("/healthz").text()], [
    500,
    "unhealthy: lease renewals stalled",
  ]);

  const head = get("/readyz", "HEAD");
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  for (
    const [path, method] of [["/", "GET"], ["/metricsx", "GET"], ["/metrics", "POST"], [
      "/constructor",
      "GET",
    ]]
  ) {
    const r = get(path as string, method);
    assert.equal(r.status, 404, `${method} ${path}`);
    await r.body?.cancel();
  }
});
