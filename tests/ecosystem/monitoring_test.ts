/**
 * @module
 * The alerts, the dashboard and docs/operations.md checked with Prometheus's own tools against the
 * operator's real `/metrics` (a run against the test world, `scrape.ts`):
 *
 * - `promtool check rules` on the PrometheusRule's groups;
 * - `promtool test rules` with the scraped series (`alert_tests.ts`): each alert fires when its
 *   condition holds and not otherwise, and an alert that filters on a label `/metrics` lacks
 *   (the `result`/`outcome` mix-up this suite was written for) fails it;
 * - a real Prometheus server scraping the running operator, with the rules loaded, answering every
 *   dashboard query with data that carries the labels the panel groups and names its legend by;
 * - the metrics table of docs/operations.md naming exactly the families and labels exported.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { type AlertRule, promtoolTests, TARGET_LABELS } from "./alert_tests.ts";
import { type Exposition, type OperatorRun, startOperatorRun } from "./scrape.ts";
import { prometheusTools, report, ROOT, run } from "./tools.ts";
import { freePort } from "../cli/process.ts";

interface PrometheusRule {
  spec: { groups: { name: string; rules: AlertRule[] }[] };
}

const prometheusRule = parse(
  await Deno.readTextFile(`${ROOT}deploy/monitoring/prometheusrule.yaml`),
) as PrometheusRule;
const dashboard = JSON.parse(await Deno.readTextFile(`${ROOT}deploy/monitoring/dashboard.json`)) as {
  panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[];
};

/** Writes the rule file promtool and prometheus read: the PrometheusRule's `spec.groups`. */
async function writeRules(dir: string, rule: PrometheusRule): Promise<string> {
  const path = `${dir}/rules.yaml`;
  await Deno.writeTextFile(path, stringify({ groups: rule.spec.groups }));
  return path;
}

async function promtoolTest(
  promtool: string,
  dir: string,
  rule: PrometheusRule,
  exposition: Exposition,
): Promise<{ code: number; output: string }> {
  const rules = await writeRules(dir, rule);
  const alerts = rule.spec.groups.flatMap((g) => g.rules).filter((r) => r.alert);
  await Deno.writeTextFile(`${dir}/tests.yaml`, promtoolTests(rules, alerts, exposition));
  const out = await run(promtool, ["test", "rules", `${dir}/tests.yaml`]);
  return { code: out.code, output: out.stdout + out.stderr };
}

/** Labels a dashboard query groups by or names in its legend (`le` is the histogram's own). */
function panelLabels(expr: string, legend = ""): string[] {
  const labels = new Set<string>();
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const l of (m[1] as string).split(",")) labels.add(l.trim());
  }
  for (const m of legend.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) labels.add(m[1] as string);
  labels.delete("le");
  labels.delete("");
  return [...labels];
}

/** A real Prometheus scraping `target` every second with the rules loaded. */
async function startPrometheus(binary: string, dir: string, target: string, rules: string) {
  const port = freePort();
  const config = {
    global: { scrape_interval: "1s", evaluation_interval: "1s" },
    rule_files: [rules],
    scrape_configs: [{
      job_name: TARGET_LABELS.job,
      metrics_path: "/metrics",
      static_configs: [{
        targets: [target],
        labels: Object.fromEntries(
          Object.entries(TARGET_LABELS).filter(([k]) => k !== "job" && k !== "instance"),
        ),
      }],
    }],
  };
  await Deno.writeTextFile(`${dir}/prometheus.yml`, stringify(config));
  const child = new Deno.Command(binary, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const query = async (q: string) => {
    const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = await r.json() as {
      status: string;
      error?: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== "success") throw new Error(`query ${q}: ${body.error}`);
    return body.data?.result ?? [];
  };
  return {
    url,
    query,
    async close() {
      child.kill("SIGTERM");
      const out = await child.output();
      return new TextDecoder().decode(out.stderr);
    },
  };
}

Deno.test("alerts, dashboard and docs against the operator's real /metrics, with promtool and prometheus", async (t) => {
  const tools = await prometheusTools();
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-prom-" });
  let operator: OperatorRun | undefined;
  try {
    const started = await startOperatorRun();
    operator = started;
    const exposition = await started.scrape();

    await t.step("promtool check rules: the PrometheusRule's groups", async () => {
      const out = await run(tools.promtool, ["check", "rules", await writeRules(dir, prometheusRule)]);
      report(out.stdout.trim());
      assert.equal(out.code, 0, out.stdout + out.stderr);
    });

    await t.step(
      "promtool test rules: each alert fires when its condition holds, not otherwise",
      async () => {
        const { code, output } = await promtoolTest(tools.promtool, dir, prometheusRule, exposition);
        const alerts = prometheusRule.spec.groups.flatMap((g) => g.rules).filter((r) => r.alert).length;
        report(
          `promtool test rules: ${alerts} alerts, ${alerts + 1} scenarios from ${exposition.series.length} ` +
            `scraped series: ${code === 0 ? "SUCCESS" : "FAILED"}`,
        );
        assert.equal(code, 0, output);
      },
    );

    await t.step("an alert filtering on a label /metrics lacks fails promtool test rules", async () => {
      const broken = structuredClone(prometheusRule);
      const rule = broken.spec.groups.flatMap((g) => g.rules).find((r) =>
        r.alert === "QuayBridgeWebhookFailures"
      );
      assert.ok(rule && /\boutcome=~/.test(rule.expr), "QuayBridgeWebhookFailures filters on outcome");
      rule.expr = rule.expr.replace(/\boutcome=~/, "result=~");
      const { code, output } = await promtoolTest(tools.promtool, `${dir}`, broken, exposition);
      assert.equal(code, 1, output);
      assert.match(output, /alertname=\\?"QuayBridgeWebhookFailures\\?"/);
    });

    await t.step("a real Prometheus answers every dashboard query with the panel's labels", async () => {
      const rules = await writeRules(dir, prometheusRule);
      const prom = await startPrometheus(tools.prometheus, dir, new URL(started.metricsUrl).host, rules);
      let log = "";
      try {
        // Three scrapes, so rate() over the panels' windows has two points or more.
        const deadline = Date.now() + 30_000;
        let samples = 0;
        while (Date.now() < deadline && samples < 3) {
          try {
            const r = await prom.query(`count_over_time(up{job="${TARGET_LABELS.job}"}[1m])`);
            samples = Number(r[0]?.value[1] ?? 0);
          } catch {
            // not listening yet
          }
          if (samples < 3) await new Promise((r) => setTimeout(r, 500));
        }
        assert.ok(samples >= 3, "Prometheus did not scrape the operator three times in 30 s");
        const up = await prom.query(`up{job="${TARGET_LABELS.job}"}`);
        assert.equal(up[0]?.value[1], "1", "the scrape target is down");
        const ruleHealth = await (await fetch(`${prom.url}/api/v1/rules`)).json() as {
          data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
        };
        const loaded = ruleHealth.data.groups.flatMap((g) => g.rules);
        assert.equal(loaded.length, prometheusRule.spec.groups.flatMap((g) => g.rules).length);
        let queries = 0;
        for (const panel of dashboard.panels) {
          for (const target of panel.targets ?? []) {
            queries++;
            const result = await prom.query(target.expr);
            assert.ok(result.length > 0, `panel "${panel.title}": ${target.expr} returns nothing`);
            for (const label of panelLabels(target.expr, target.legendFormat)) {
              assert.ok(
                result.every((r) => label in r.metric),
                `panel "${panel.title}": ${target.expr} has no label ${label} (it got ${
                  JSON.stringify(result.map((r) => r.metric))
                })`,
              );
            }
          }
        }
        for (const r of loaded) assert.notEqual(r.health, "err", `${r.name}: ${r.lastError}`);
        report(
          `prometheus: ${queries} dashboard queries answered with their labels, ${loaded.length} rules loaded`,
        );
      } finally {
        log = await prom.close();
      }
      assert.doesNotMatch(log, /level=error/, log);
    });

    await t.step("docs/operations.md lists every exported family with its labels", async () => {
      const docs = await Deno.readTextFile(`${ROOT}docs/operations.md`);
      const documented = new Map<string, Set<string>>();
      for (const line of docs.split("\n")) {
        const cells = line.split("|").map((c) => c.trim());
        if (cells.length < 5 || !/^`[a-z_]+`/.test(cells[1] ?? "")) continue;
        // "`queue`, `result` (`success`/`error`)": the names outside parentheses are labels.
        const labels = new Set(
          [...(cells[3] ?? "").replace(/\([^)]*\)/g, "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string),
        );
        for (const m of (cells[1] ?? "").matchAll(/`([a-z_]+)`/g)) documented.set(m[1] as string, labels);
      }
      const exported = new Map<string, Set<string>>();
      for (const [family] of exposition.types) exported.set(family, new Set());
      for (const s of exposition.series) {
        const family = [...exposition.types.keys()].find((f) => s.name === f || s.name.startsWith(`${f}_`));
        for (const label of Object.keys(s.labels)) {
          if (label !== "le") exported.get(family ?? s.name)?.add(label);
        }
      }
      const sorted = (m: Map<string, Set<string>>) =>
        Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort());
      assert.deepEqual(sorted(documented), sorted(exported));
    });
  } finally {
    await operator?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
