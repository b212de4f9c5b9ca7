/**
 * @module
 * Prometheus metrics in the text exposition format (0.0.4): counters, gauges and histograms with
 * labels, and the process metrics that need no extra permission. Hand-written (about a hundred
 * lines) rather than prom-client, which under Deno needs `--allow-all` for its process metrics and
 * costs 35 ms of import time (docs/runtime.md).
 */

export type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function labelText(labels: Labels, extra?: Labels): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all).sort();
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(all[k] as string)}"`).join(",")}}`;
}

/** A series' key: labels by name in code-unit order (not `localeCompare`: ICU on every observation). */
function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

interface Metric {
  readonly name: string;
  render(): string;
}

/** A monotonically increasing counter. */
export class Counter implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const entry = this.#values.get(k);
    if (entry) entry.value += by;
    else this.#values.set(k, { labels, value: by });
  }
  /** The current value for `labels` (tests). */
  value(labels: Labels = {}): number {
    return this.#values.get(keyOf(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.name}${labelText(labels)} ${value}`);
    }
    return lines.join("\n");
  }
}

/** A value that goes up and down; optionally computed at scrape time. */
export class Gauge implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly collect?: () => Iterable<[Labels, number]>,
  ) {}
  set(labels: Labels, value: number): void {
    this.#values.set(keyOf(labels), { labels, value });
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    const entries: Iterable<[Labels, number]> = this.collect
      ? this.collect()
      : [...this.#values.values()].map((e) => [e.labels, e.value] as [Labels, number]);
    for (const [labels, value] of entries) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join("\n");
  }
}

/** A histogram with fixed buckets (seconds). */
export class Histogram implements Metric {
  readonly #values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(labels: Labels, value: number): void {
    const k = keyOf(labels);
    let entry = this.#values.get(k);
    if (!entry) this.#values.set(k, entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 });
    entry.sum += value;
    entry.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) entry.counts[i] = (entry.counts[i] ?? 0) + 1;
    }
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.#values.values()) {
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket${labelText(labels, { le: String(b) })} ${counts[i]}`)
      );
      lines.push(`${this.name}_bucket${labelText(labels, { le: "+Inf" })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines.join("\n");
  }
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The operator's metrics. */
export class Metrics {
  readonly reconciles = new Counter("quay_bridge_reconciles_total", "Reconciles by queue and result.");
  readonly reconcileErrors = new Counter("quay_bridge_reconcile_errors_total", "Failed reconciles by queue.");
  readonly reconcileDuration = new Histogram(
    "quay_bridge_reconcile_duration_seconds",
    "Reconcile duration by queue.",
    LATENCY_BUCKETS,
  );
  readonly queueDepth = new Gauge("quay_bridge_queue_depth", "Keys waiting in each work queue.");
  readonly quayRequests = new Counter(
    "quay_bridge_quay_requests_total",
    "Quay API requests by route and status code.",
  );
  readonly quayLatency = new Histogram(
    "quay_bridge_quay_request_duration_seconds",
    "Quay API request latency by route.",
    LATENCY_BUCKETS,
  );
  readonly kubeRequests = new Counter(
    "quay_bridge_kube_requests_total",
    "Kubernetes API requests by verb and code.",
  );
  readonly admissions = new Counter(
    "quay_bridge_webhook_admissions_total",
    "Admission reviews by outcome (mutated, allowed, denied, invalid, error).",
  );
  readonly admissionLatency = new Histogram(
    "quay_bridge_webhook_admission_duration_seconds",
    "Admission review latency by outcome.",
    LATENCY_BUCKETS,
  );
  readonly isLeader = new Gauge("quay_bridge_leader", "1 while this replica leads.");
  readonly notificationDeliveries = new Counter(
    "quay_bridge_notification_deliveries_total",
    "Quay push notifications received, by result (queued, ignored, unauthorized, invalid, too_large, throttled, not_found, error).",
  );
  readonly quayReachable: Gauge;
  readonly managedNamespaces: Gauge;
  readonly credentialAge: Gauge;
  readonly leftBehindOrganizations: Gauge;
  readonly #started = Date.now() / 1000;

  /**
   * `collectors` compute gauges at scrape time from the operator's state, so they can never go
   * stale: per-integration Quay reachability, namespaces by sync state and credential age.
   */
  constructor(collectors: MetricsCollectors = {}) {
    this.quayReachable = new Gauge(
      "quay_bridge_quay_reachable",
      "1 when the integration's Quay answered its last call, 0 when it did not (no answer or 5xx).",
      collectors.quayReachable,
    );
    this.managedNamespaces = new Gauge(
      "quay_bridge_managed_namespaces",
      "Namespaces by sync state.",
      collectors.namespaces,
    );
    this.credentialAge = new Gauge(
      "quay_bridge_credential_age_seconds",
      "Age of the oldest robot token in each namespace's Secrets (since its credentials-rotated-at).",
      collectors.credentialAge,
    );
    this.leftBehindOrganizations = new Gauge(
      "quay_bridge_organizations_left_behind",
      "Quay organizations of deleted namespaces whose deletion is still being retried, by QuayIntegration.",
      collectors.leftBehind,
    );
  }

  /**
   * Counts one admission review. The label is `outcome`, the field name of the webhook's log line
   * (`msg: "admission"`), which the alert QuayBridgeWebhookFailures, the dashboard and
   * docs/operations.md use; naming it here keeps callers from choosing another.
   */
  observeAdmission(outcome: string, seconds: number): void {
    this.admissions.inc({ outcome });
    this.admissionLatency.observe({ outcome }, seconds);
  }

  /** The text exposition. */
  render(): string {
    const metrics: Metric[] = [
      this.reconciles,
      this.reconcileErrors,
      this.reconcileDuration,
      this.queueDepth,
      this.quayRequests,
      this.quayLatency,
      this.kubeRequests,
      this.admissions,
      this.admissionLatency,
      this.isLeader,
      this.notificationDeliveries,
      this.quayReachable,
      this.managedNamespaces,
      this.credentialAge,
      this.leftBehindOrganizations,
    ];
    const mem = Deno.memoryUsage();
    const process = [
      "# HELP process_resident_memory_bytes Resident memory size in bytes.",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${mem.rss}`,
      "# HELP process_heap_bytes V8 heap in use.",
      "# TYPE process_heap_bytes gauge",
      `process_heap_bytes ${mem.heapUsed}`,
      "# HELP process_start_time_seconds Start time of the process since the epoch in seconds.",
      "# TYPE process_start_time_seconds gauge",
      `process_start_time_seconds ${this.#started}`,
    ].join("\n");
    return metrics.map((m) => m.render()).join("\n") + "\n" + process + "\n";
  }
}

/** Scrape-time sources of the computed gauges. */
export interface MetricsCollectors {
  quayReachable?: () => Iterable<[Labels, number]>;
  namespaces?: () => Iterable<[Labels, number]>;
  credentialAge?: () => Iterable<[Labels, number]>;
  leftBehind?: () => Iterable<[Labels, number]>;
}

/** Content type of the exposition. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
