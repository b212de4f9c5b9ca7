/**
 * A restart that must re-read Quay for every namespace (background work) serves a project created
 * meanwhile first instead of keeping it waiting behind all of them.
 */
import assert from "node:assert/strict";
import { startBridge, synced } from "../integration/harness.ts";
import { figure, size } from "./suite.ts";
import { SYNCED_ANNOTATION } from "../../src/controller/sync_evidence.ts";

/** Namespaces re-read at startup (`RELIABILITY_SIZE=large` runs 400). */
const SIZE = size(60, 400);

Deno.test(`a new project is served before the startup re-reads of ${SIZE} namespaces`, async () => {
  const b = await startBridge({ flags: ["--concurrency", "4"] });
  try {
    const names = Array.from({ length: SIZE }, (_, i) => `old-${i}`);
    for (const ns of names) await b.createProject(ns);
    for (const ns of names) await synced(b, ns, { timeoutMs: 120_000 });
    await b.running?.stop();
    // Without the sync evidence on the namespaces a restart must re-read each organization from
    // Quay (as after an upgrade from an operator that wrote none, or a gap in Quay's audit log).
    for (const ns of names) {
      await b.kube.ok(
        "PATCH",
        `/api/v1/namespaces/${ns}`,
        { metadata: { annotations: { [SYNCED_ANNOTATION]: null } } },
        "application/merge-patch+json",
      );
    }
    // Every Quay call now takes 40 ms: the re-reads take seconds.
    b.quayWorld.faults.latency({ ms: 40 });
    const running = await b.startOperator();
    const started = performance.now();
    await b.createProject("fresh");
    await synced(b, "fresh", { timeoutMs: 120_000 });
    const fresh = performance.now() - started;
    while (!running.operator.namespaceQueue.isIdle()) await new Promise((r) => setTimeout(r, 20));
    const all = performance.now() - started;
    assert.ok(
      fresh < all / 2,
      `the new project took ${Math.round(fresh)} ms, the re-reads of ${SIZE} namespaces ${
        Math.round(all)
      } ms`,
    );
    figure(
      "a new project during a restart's re-reads",
      1,
      1,
      `synced in ${(fresh / 1000).toFixed(1)} s; re-reading ${SIZE} namespaces took ${
        (all / 1000).toFixed(1)
      } s`,
    );
  } finally {
    b.quayWorld.faults.latency(null);
    await b.close();
  }
});
