/**
 * @module
 * A real run of the operator whose `/metrics` the monitoring checks read: the operator (as `quay-bridge
 * run` runs it, with its ServiceAccount's permissions and the self-managed webhook) against the test
 * world, driven through what an installation sees — a project provisioned in Quay, a Build admitted
 * by the webhook, a malformed AdmissionReview, a forged Quay push notification, and Quay answering 500
 * to organization creation for a second project — so that every metric family has the series a cluster
 * would have.
 */
import { freePort } from "../cli/process.ts";
import { startBridge, synced, until } from "../integration/harness.ts";

/** One series of the exposition. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed text exposition. */
export interface Exposition {
  /** `# TYPE` by metric family. */
  types: Map<string, string>;
  series: Series[];
  /** The raw text. */
  text: string;
}

/** Parses the Prometheus text format (0.0.4) as the operator writes it. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const series: Series[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => c === "n" ? "\n" : c);
    }
    series.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return { types, series, text };
}

/** A running operator with its ops port; `close` stops it and the world. */
export interface OperatorRun {
  metricsUrl: string;
  scrape(): Promise<Exposition>;
  close(): Promise<void>;
}

/** Starts the operator against the test world and drives it as the module doc says. */
export async function startOperatorRun(): Promise<OperatorRun> {
  const opsPort = freePort();
  const webhookPort = freePort();
  const b = await startBridge({
    openshift: true,
    logLevel: "warn",
    flags: [
      "--webhook-mode",
      "self-managed",
      "--webhook-host",
      "127.0.0.1",
      "--webhook-port",
      String(webhookPort),
      "--ops-host",
      "127.0.0.1",
      "--ops-port",
      String(opsPort),
    ],
  });
  const metricsUrl = `http://127.0.0.1:${opsPort}/metrics`;
  const scrape = async () => parseExposition(await (await fetch(metricsUrl)).text());
  try {
    const suffix = crypto.randomUUID().slice(0, 6);
    // A project provisioned in Quay, and a Build the webhook rewrites.
    const ns = `eco-${suffix}`;
    await b.createProject(ns);
    await synced(b, ns);
    await b.kube.ok("POST", `/apis/build.openshift.io/v1/namespaces/${ns}/builds`, {
      metadata: { name: "app-1" },
      spec: {
        strategy: { type: "Docker", dockerStrategy: {} },
        source: { type: "Dockerfile", dockerfile: "FROM scratch\n" },
        output: { to: { kind: "ImageStreamTag", name: "app:v1" } },
      },
    });
    // A malformed AdmissionReview straight to the webhook, trusting the CA it published.
    const mwc = await until("the webhook registered", async () => {
      const list = await b.kube.ok(
        "GET",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
      );
      const hook = list.items?.[0]?.webhooks?.[0];
      return hook?.clientConfig?.caBundle ? hook : undefined;
    }, 20_000);
    const http = Deno.createHttpClient({ caCerts: [atob(mwc.clientConfig.caBundle)] });
    try {
      const answer = await fetch(`https://127.0.0.1:${webhookPort}/admissionwebhook`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"kind":"AdmissionReview","request":',
        client: http,
      });
      await answer.body?.cancel();
      // A forged Quay push notification (no valid token): counted, refused, nothing imported.
      const forged = await fetch(`https://127.0.0.1:${webhookPort}/quay-notifications/quay/org/app/forged`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"repository":"org/app","updated_tags":["v1"]}',
        client: http,
      });
      await forged.body?.cancel();
    } finally {
      http.close();
    }
    // Quay fails organization creation for a second project: reconcile errors and 500s.
    b.quayWorld.faults.failRoute("POST /api/v1/organization/", { status: 500 });
    await b.createProject(`eco-fail-${suffix}`);
    await until("a failed reconcile and a Quay 500 in /metrics", async () => {
      const m = await scrape();
      const failed = m.series.some((s) => s.name === "quay_bridge_reconcile_errors_total" && s.value > 0);
      const fiveHundred = m.series.some((s) =>
        s.name === "quay_bridge_quay_requests_total" && Object.values(s.labels).includes("500")
      );
      const admitted = m.series.filter((s) => s.name === "quay_bridge_webhook_admissions_total").length >= 2;
      return failed && fiveHundred && admitted;
    }, 30_000);
  } catch (error) {
    await b.close();
    throw error;
  }
  return {
    metricsUrl,
    scrape,
    async close() {
      b.quayWorld.faults.failRoute("POST /api/v1/organization/", null);
      await b.close();
    },
  };
}
