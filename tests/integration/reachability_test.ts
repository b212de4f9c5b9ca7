/**
 * `QuayReachable` and `quay_bridge_quay_reachable` follow the Quay calls the operator makes: a stall
 * or a refusal met by a namespace pass turns them False/0 within seconds (not at the next resync),
 * and they turn back once Quay answers again.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";

async function reachableCondition(b: Bridge): Promise<string | undefined> {
  const cr = await b.kube.ok("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay");
  return (cr.status?.conditions ?? []).find((c: { type: string }) => c.type === "QuayReachable")?.status;
}

function gauge(b: Bridge): string | undefined {
  const line = b.running?.metrics.render().split("\n").find((l) =>
    l.startsWith('quay_bridge_quay_reachable{integration="quay"}')
  );
  return line?.split(" ").at(-1);
}

/** Waits until the condition and the gauge both say `up`; returns the seconds it took. */
async function flipped(b: Bridge, up: boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await until(
    `QuayReachable ${up}`,
    async () => (await reachableCondition(b)) === (up ? "True" : "False") && gauge(b) === (up ? "1" : "0"),
    timeoutMs,
  );
  return (Date.now() - started) / 1000;
}

async function addImageStream(b: Bridge, name: string): Promise<void> {
  await b.kube.ok("POST", "/apis/image.openshift.io/v1/namespaces/reach/imagestreams", {
    metadata: { name },
  });
}

Deno.test("QuayReachable and the gauge flip within seconds of a Quay stall or refusal, and recover", async () => {
  // A resync of 10 minutes: nothing but the calls themselves can make the status follow Quay.
  const b = await startBridge({ flags: ["--quay-timeout", "1s", "--resync", "10m"] });
  try {
    await b.createProject("reach");
    await synced(b, "reach");
    await flipped(b, true, 10_000);

    // A stall: requests are accepted and never answered.
    await b.quayWorld.faults.outage({ mode: "hang" });
    await addImageStream(b, "stalled");
    const stall = await flipped(b, false, 8_000);
    await b.quayWorld.faults.restore();
    const back = await flipped(b, true, 20_000);

    // A refusal: the port is closed.
    await b.quayWorld.faults.outage({ mode: "refuse" });
    await addImageStream(b, "refused");
    const refusal = await flipped(b, false, 8_000);
    await b.quayWorld.faults.restore();
    const backAgain = await flipped(b, true, 20_000);
    const figures = `stall seen in ${stall} s, recovered in ${back} s; refusal seen in ${refusal} s, ` +
      `recovered in ${backAgain} s`;
    assert.ok(stall < 6 && refusal < 6, `within seconds: ${figures}`);
    await until("both repositories created", async () => {
      const list = await b.quay.ok("GET", "/api/v1/repository?namespace=openshift_reach");
      const names = list.repositories.map((r: { name: string }) => r.name);
      return names.includes("stalled") && names.includes("refused");
    }, 30_000);
  } finally {
    await b.quayWorld.faults.clear();
    await b.close();
  }
});
