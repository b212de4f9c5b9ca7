/**
 * @module
 * The ServiceMonitor selects the metrics Service and scrapes its port. The alerts and the dashboard
 * are checked with promtool and a real Prometheus against the operator's real `/metrics` in
 * tests/ecosystem/monitoring_test.ts.
 */
import assert from "node:assert/strict";
import { readYaml } from "./helpers.ts";

Deno.test("the ServiceMonitor scrapes the metrics Service's port", async () => {
  const [monitor] = await readYaml("deploy/monitoring/servicemonitor.yaml") as [
    {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    },
  ];
  const services = await readYaml("deploy/operator/service.yaml");
  const metrics = services.find((s) =>
    Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v)
  ) as { spec: { ports: { name: string }[] } } | undefined;
  assert.ok(metrics, "the selector matches no Service");
  assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.path]), [["metrics", "/metrics"]]);
  assert.ok(metrics.spec.ports.some((p) => p.name === "metrics"));
});
