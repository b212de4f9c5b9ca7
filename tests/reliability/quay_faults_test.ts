/**
 * Quay faults: 30 % server errors, 429 with Retry-After, stalls beyond the request timeout, and an
 * outage (refused connections) while projects come and go. After each, with the fault still on or
 * just lifted, the operator reaches the exact state, and no token appears in its logs.
 */
import { type Bridge, startBridge } from "../integration/harness.ts";
import { assertNoSecret, exactState, figure, secretsOf, size } from "./suite.ts";

const OUTAGE_MS = size(5_000, 120_000);
const PER_PHASE = size(3, 20);

Deno.test("Quay faults: 5xx, 429, stalls and an outage all end in the exact state", async () => {
  const b = await startBridge({ flags: ["--quay-timeout", "1s", "--resync", "5s"], logLevel: "debug" });
  const live: string[] = [];
  const gone: string[] = [];
  let tried = 0;
  let held = 0;
  const phase = async (
    name: string,
    during: (b: Bridge) => Promise<void>,
    lift: () => Promise<void> | void,
  ) => {
    tried++;
    for (let i = 0; i < PER_PHASE; i++) {
      const ns = `${name}-${i}`;
      await b.createProject(ns);
      live.push(ns);
    }
    // One earlier project is deleted under the fault too.
    const victim = live.shift();
    if (victim) {
      await b.kube.ok("DELETE", `/api/v1/namespaces/${victim}`);
      gone.push(victim);
    }
    await during(b);
    await lift();
    await exactState(b, live, gone, 180_000);
    held++;
  };
  try {
    await b.createProject("base");
    live.push("base");
    await exactState(b, live, gone);
    const faults = b.quayWorld.faults;

    // 30 % of API requests fail with 5xx (JSON or a proxy's HTML page); the state converges anyway.
    faults.errorRate({ rate: 0.3 });
    await phase("errors", async () => await exactState(b, live, gone, 180_000), () => faults.errorRate(null));

    // Throttled: 429 with Retry-After on the next 40 requests (the world's count-based knob; a
    // time-based limit would also throttle this test's own checks).
    faults.throttleNext(40, { retryAfterSeconds: 1 });
    const throttledAt = performance.now();
    await phase("throttled", () => Promise.resolve(), () => {});
    const drainSeconds = (performance.now() - throttledAt) / 1000;

    // Stalls: answers take 0.5–2 s against a 1 s timeout.
    faults.latency({ ms: 500, jitterMs: 1_500 });
    await phase("stalled", () => new Promise((r) => setTimeout(r, 3_000)), () => faults.latency(null));

    // Outage: connections refused.
    await faults.outage({ mode: "refuse" });
    await phase("outage", () => new Promise((r) => setTimeout(r, OUTAGE_MS)), () => faults.restore());

    const output = b.logs.map((l) => JSON.stringify(l)).join("\n");
    const checked = assertNoSecret(output, await secretsOf(b, live));
    figure(
      "Quay faults (30% 5xx, 429 + Retry-After, stalls, outage)",
      tried,
      held,
      `40 × 429 drained to the exact state in ${drainSeconds.toFixed(1)} s; outage ${
        OUTAGE_MS / 1000
      } s; ${live.length} live, ${gone.length} deleted exact; ${checked} tokens absent ` +
        `from ${b.logs.length} log lines`,
    );
  } finally {
    await b.quayWorld.faults.clear();
    await b.close();
  }
});
