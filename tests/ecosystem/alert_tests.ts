/**
 * @module
 * Builds a `promtool test rules` file for the PrometheusRule from a real `/metrics` scrape: the input
 * series are exactly the series the operator exported (names and label sets), with the target
 * labels the ServiceMonitor adds, and values chosen per scenario. Nothing here names a label of the
 * operator's metrics: a scenario picks series by metric name and by label *value* (`invalid`,
 * `500`, `error`), so an alert that filters or groups on a label `/metrics` does not have never
 * fires, and the test says so.
 *
 * Scenarios: one healthy cluster (no alert pending or firing after an hour) and, per alert, that
 * cluster with the alert's condition true from the start: firing at 60 minutes, not yet firing one
 * evaluation before its `for` has elapsed.
 */
import { stringify } from "yaml";
import type { Exposition, Series } from "./scrape.ts";

/** The labels Prometheus attaches to every series scraped through the ServiceMonitor. */
export const TARGET_LABELS: Readonly<Record<string, string>> = {
  job: "quay-bridge-metrics",
  instance: "10.128.2.17:8080",
  namespace: "quay-bridge",
  pod: "quay-bridge-6f7d9c8b4-x2x9k",
  service: "quay-bridge-metrics",
  endpoint: "metrics",
  container: "quay-bridge",
};

/** Minutes of series and the evaluation step. */
const MINUTES = 70;
const FIRING_AT = "60m";

/** A PrometheusRule's alerting rule. */
export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}

type Values = string;
type Transform = (s: Series, healthy: Values) => Values;

const perSecond = (rate: number) => `0+${rate * 60}x${MINUTES}`;
const constant = (value: number) => `${value}x${MINUTES}`;
/** A label value that marks a failed request, reconcile or admission. */
const FAILED_VALUE = /^(error|invalid|5\d\d)$/;
const failed = (s: Series) =>
  s.name.endsWith("_errors_total") || Object.values(s.labels).some((v) => FAILED_VALUE.test(v));

/** Gauges whose healthy value is not the scraped one. */
const HEALTHY_GAUGES: Record<string, number> = {
  quay_bridge_leader: 1,
  quay_bridge_quay_reachable: 1,
  quay_bridge_queue_depth: 0,
};

/** A healthy hour: every counter at 1/s except failures at 0, fast histograms, healthy gauges. */
function healthyValues(s: Series, type: string | undefined): Values {
  if (type === "counter") return failed(s) ? constant(0) : perSecond(1);
  if (type === "histogram") {
    // Every observation in the lowest bucket (1 ms): the buckets all grow with the count.
    if (s.name.endsWith("_sum")) return `0+0.06x${MINUTES}`;
    return perSecond(1);
  }
  return constant(HEALTHY_GAUGES[s.name] ?? s.value);
}

/** How each alert's condition is made true; keyed by alert name. */
export const FIRING: Record<string, { touches: string; transform: Transform }> = {
  QuayBridgeDown: { touches: "up", transform: () => constant(0) },
  QuayBridgeNoLeader: { touches: "quay_bridge_leader", transform: () => constant(0) },
  QuayBridgeReconcileErrors: {
    touches: "quay_bridge_reconcile",
    transform: (s, healthy) => failed(s) ? perSecond(1) : healthy,
  },
  QuayBridgeQuayUnreachable: { touches: "quay_bridge_quay_reachable", transform: () => constant(0) },
  QuayBridgeQuayErrors: {
    touches: "quay_bridge_quay_requests_total",
    transform: (s, healthy) => failed(s) ? perSecond(100) : healthy,
  },
  QuayBridgeWebhookFailures: {
    touches: "quay_bridge_webhook_admissions_total",
    transform: (s, healthy) => failed(s) ? perSecond(100) : healthy,
  },
  QuayBridgeWebhookSlow: {
    touches: "quay_bridge_webhook_admission_duration_seconds_bucket",
    // Every admission takes 5–10 s: the buckets up to 5 s stay empty.
    transform: (s) => Number(s.labels.le) <= 5 ? constant(0) : perSecond(1),
  },
  QuayBridgeQueueBacklog: { touches: "quay_bridge_queue_depth", transform: () => constant(1000) },
  QuayBridgeFrequentRestarts: {
    touches: "process_start_time_seconds",
    // A new start time every minute.
    transform: () => `1796000000+60x${MINUTES}`,
  },
};

function seriesText(name: string, labels: Record<string, string>): string {
  const body = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`)
    .join(",");
  return `${name}{${body}}`;
}

/** Series of the scrape with the target labels, plus `up`, which Prometheus adds. */
function scrapedSeries(exposition: Exposition): { series: Series; type: string | undefined }[] {
  const family = (name: string) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && exposition.types.get(base) === "histogram") return base;
    }
    return name;
  };
  const out = exposition.series.map((s) => ({
    series: { ...s, labels: { ...s.labels, ...TARGET_LABELS } },
    type: exposition.types.get(family(s.name)),
  }));
  out.push({ series: { name: "up", labels: { ...TARGET_LABELS }, value: 1 }, type: "gauge" });
  return out;
}

/** Minutes of a Prometheus duration such as `10m` or `1h`. */
export function minutes(duration: string | undefined): number {
  if (!duration) return 0;
  const m = /^(\d+)([smh])$/.exec(duration);
  if (!m) throw new Error(`unsupported duration ${duration}`);
  const n = Number(m[1]);
  return m[2] === "h" ? n * 60 : m[2] === "m" ? n : n / 60;
}

/** Thrown when a scenario cannot be built from the scrape (the rule names a metric that is absent). */
export class ScenarioError extends Error {
  override name = "ScenarioError";
}

/** The `promtool test rules` document for `rules` (a rule file path) and the scrape. */
export function promtoolTests(ruleFile: string, alerts: AlertRule[], exposition: Exposition): string {
  const scraped = scrapedSeries(exposition);
  const healthy = scraped.map(({ series, type }) => ({ series, values: healthyValues(series, type) }));
  const input = (rows: { series: Series; values: Values }[]) =>
    rows.map(({ series, values }) => ({ series: seriesText(series.name, series.labels), values }));
  const firing = (alert: string) => `count(ALERTS{alertname="${alert}",alertstate="firing"})`;
  const tests: unknown[] = [{
    name: "healthy: no alert pending or firing",
    interval: "1m",
    input_series: input(healthy),
    promql_expr_test: [{ expr: "count(ALERTS)", eval_time: FIRING_AT, exp_samples: [] }],
  }];
  for (const rule of alerts) {
    const scenario = FIRING[rule.alert];
    if (!scenario) throw new ScenarioError(`no firing scenario for alert ${rule.alert}: add one to FIRING`);
    const touched = healthy.filter(({ series }) => series.name.startsWith(scenario.touches));
    if (touched.length === 0) {
      throw new ScenarioError(`${rule.alert}: /metrics has no series ${scenario.touches}*`);
    }
    const rows = healthy.map(({ series, values }) => ({
      series,
      values: series.name.startsWith(scenario.touches) ? scenario.transform(series, values) : values,
    }));
    const notYet = Math.max(1, minutes(rule.for) - 1);
    tests.push({
      name: `${rule.alert} fires when its condition holds`,
      interval: "1m",
      input_series: input(rows),
      promql_expr_test: [
        {
          expr: `${firing(rule.alert)} > bool 0`,
          eval_time: FIRING_AT,
          exp_samples: [{ labels: "{}", value: 1 }],
        },
        { expr: firing(rule.alert), eval_time: `${notYet}m`, exp_samples: [] },
      ],
    });
  }
  return stringify({ rule_files: [ruleFile], evaluation_interval: "1m", tests }, { lineWidth: 0 });
}
