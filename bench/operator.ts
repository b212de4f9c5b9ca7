/**
 * @module
 * The operator's own speed against the test world: how fast it provisions a burst of new projects
 * (each with R ImageStreams), how many Quay calls each costs (the budget is 8 + R; the
 * upstream operator spends about 7 + N GETs on every ImageStream event alone), and what an event on
 * every already-synced namespace costs.
 *
 * `deno run -A bench/operator.ts` runs it alone; `deno task bench` runs it with the others.
 */
import "../src/quiet_deprecations.ts";
import { startBridge } from "../tests/integration/harness.ts";

/** Options of {@linkcode benchOperator}. */
export interface OperatorBenchOptions {
  /** New projects created at once. @default 200 */
  namespaces?: number;
  /** ImageStreams per project. @default 3 */
  imageStreams?: number;
  /** `--concurrency` of the operator. @default 8 */
  concurrency?: number;
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function total(calls: Record<string, number>): number {
  return Object.values(calls).reduce((a, n) => a + n, 0);
}

/** Runs the benchmark and returns its figures. */
export async function benchOperator(options: OperatorBenchOptions = {}): Promise<Record<string, number>> {
  const namespaces = options.namespaces ?? 200;
  const imageStreams = options.imageStreams ?? 3;
  const concurrency = options.concurrency ?? 8;
  const bridge = await startBridge({
    flags: ["--concurrency", String(concurrency), "--resync", "1h"],
    logLevel: "warn",
  });
  try {
    const running = bridge.running;
    if (!running) throw new Error("operator not running");
    const ready = () => {
      let n = 0;
      for (const [name, outcome] of running.operator.outcomes) {
        if (name.startsWith("bench-") && outcome.state === "Ready") n++;
      }
      return n;
    };
    const waitReady = async (want: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (ready() < want) {
        if (Date.now() > deadline) throw new Error(`only ${ready()} of ${want} namespaces became Ready`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    // The projects arrive at once, fully formed (service accounts and the SCC annotation), as after
    // a bulk import: the burst measures the operator, not the clients creating them.
    const objects = [];
    for (let i = 0; i < namespaces; i++) {
      const ns = `bench-${i}`;
      objects.push({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns, annotations: { "openshift.io/sa.scc.mcs": "s0:c1,c2" } },
      });
      for (const sa of ["builder", "default", "deployer"]) {
        objects.push({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: ns } });
      }
      for (let j = 0; j < imageStreams; j++) {
        objects.push({
          apiVersion: "image.openshift.io/v1",
          kind: "ImageStream",
          metadata: { name: `app-${j}`, namespace: ns },
        });
      }
    }
    bridge.quayWorld.resetCalls();
    const started = performance.now();
    bridge.kubeWorld.load(objects);
    await waitReady(namespaces, 300_000);
    const provisionMs = performance.now() - started;
    // Let repository creation that completes after the namespace turned Ready settle in the counts.
    await new Promise((r) => setTimeout(r, 200));
    const calls = bridge.quayWorld.calls();
    // Calls not about one organization (the integration's token and reachability checks).
    const shared = Object.entries(calls).filter(([route]) =>
      !/\{org\}|organization\/$|repository$/.test(route)
    )
      .reduce((a, [, n]) => a + n, 0);
    const provisionCalls = total(calls) - shared;

    // An event on every synced namespace (e.g. a relabel): answered from the in-memory mirror of
    // each organization, with no Quay call until the resync period says the mirror is stale.
    bridge.quayWorld.resetCalls();
    const resyncStarted = performance.now();
    for (const name of running.operator.outcomes.keys()) {
      if (name.startsWith("bench-")) running.operator.namespaceQueue.add(name);
    }
    await new Promise((r) => setTimeout(r, 50));
    while (!running.operator.namespaceQueue.isIdle()) await new Promise((r) => setTimeout(r, 10));
    const eventMs = performance.now() - resyncStarted;
    const eventCalls = total(bridge.quayWorld.calls());

    return {
      operator_namespaces: namespaces,
      operator_imagestreams_per_namespace: imageStreams,
      operator_concurrency: concurrency,
      operator_provision_ms: round(provisionMs),
      operator_provision_namespaces_per_s: round(namespaces / (provisionMs / 1000)),
      operator_quay_calls_per_new_namespace: round(provisionCalls / namespaces, 2),
      operator_quay_call_budget_per_new_namespace: 8 + imageStreams,
      operator_quay_calls_shared: shared,
      operator_event_on_every_namespace_ms: round(eventMs),
      operator_quay_calls_per_event_on_synced_namespace: round(eventCalls / namespaces, 2),
    };
  } finally {
    await bridge.close();
  }
}

if (import.meta.main) {
  const figures = await benchOperator({ namespaces: Number(Deno.args[0] ?? 200) });
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(figures, null, 2) + "\n"));
}
