/**
 * @module
 * The alerts and the dashboard only query metrics the operator exports (`src/ops/metrics.ts`), so a
 * renamed metric cannot silently leave an alert that never fires.
 */
import assert from "node:assert/strict";
import { Metrics } from "../../src/ops/metrics.ts";
import { readYaml, ROOT } from "./helpers.ts";

/** Metric names in the exposition of a fresh {@linkcode Metrics}, with the histogram series. */
function exportedNames(): Set<string> {
  const names = new Set<string>(["up"]); // Prometheus adds `up` to every scrape target.
  for (const line of new Metrics().render().split("\n")) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === "histogram") { for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s); }
  }
  return names;
}

const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "inf",
  "nan",
]);

/** The metric names a PromQL expression selects. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+\S+/g, " ")
    .replace(/(?<![A-Za-z0-9_:])[0-9][0-9.eE+-]*[a-z]*/g, " ");
  const names: string[] = [];
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, word, call] = m as unknown as [string, string, string | undefined];
    if (call || KEYWORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

Deno.test("metricNames finds the selected series only", () => {
  assert.deepEqual(
    metricNames('sum by (queue) (rate(a_total{x="y(z)"}[5m])) / on (queue) b > 0.1 and bool c offset 5m'),
    ["a_total", "b", "c"],
  );
});

Deno.test("every alert expression uses only exported metrics, and the expected alerts exist", async () => {
  const names = exportedNames();
  const [rule] = await readYaml("deploy/monitoring/prometheusrule.yaml") as [
    { spec: { groups: { rules: { alert: string; expr: string; labels: { severity: string } }[] }[] } },
  ];
  const rules = rule.spec.groups.flatMap((g) => g.rules);
  for (const r of rules) {
    const used = metricNames(r.expr);
    assert.ok(used.length > 0, `${r.alert}: no metric in ${r.expr}`);
    for (const name of used) {
      assert.ok(names.has(name), `${r.alert} uses ${name}, which the operator does not export`);
    }
    assert.ok(["warning", "critical"].includes(r.labels.severity), r.alert);
  }
  const alerts = rules.map((r) => r.alert);
  for (
    const expected of [
      "QuayBridgeReconcileErrors",
      "QuayBridgeQuayUnreachable",
      "QuayBridgeWebhookFailures",
      "QuayBridgeFrequentRestarts",
    ]
  ) assert.ok(alerts.includes(expected), expected);
});

Deno.test("every dashboard query uses only exported metrics", async () => {
  const names = exportedNames();
  const dashboard = JSON.parse(await Deno.readTextFile(ROOT + "deploy/monitoring/dashboard.json")) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dashboard.panels.length >= 8);
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const name of metricNames(target.expr)) {
        assert.ok(names.has(name), `panel "${panel.title}" uses ${name}, which the operator does not export`);
      }
    }
  }
});

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
