/**
 * @module
 * The Quay client's pacing against the world's rate limit: a 429 with `Retry-After` pauses every
 * call of the client, and its additive-increase, multiplicative-decrease rate keeps many workers at
 * about what Quay allows instead of multiplying the 429s.
 */
import assert from "node:assert/strict";
import { QuayApiError } from "../../../src/errors.ts";
import { QuayClient } from "../../../src/quay/client.ts";
import { startQuayWorld } from "./mod.ts";

Deno.test("eight workers behind one client stay at or below 2.4 requests/s under a 2 requests/s limit", async () => {
  const quay = await startQuayWorld();
  const client = new QuayClient({ baseUrl: quay.url, caBundle: quay.caPem, token: () => quay.adminToken });
  try {
    quay.faults.rateLimit({ ratePerSecond: 2 });
    quay.resetCalls();
    const started = performance.now();
    const deadline = started + 15_000;
    let ok = 0;
    let throttled = 0;
    // Each worker does what the work queue does with a transient error: tries again (here at once,
    // the harshest case; the client holds the call until Quay's Retry-After has passed).
    const worker = async () => {
      while (performance.now() < deadline) {
        try {
          await client.getUser();
          ok++;
        } catch (error) {
          if (!(error instanceof QuayApiError) || error.status !== 429) throw error;
          throttled++;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const seconds = (performance.now() - started) / 1000;
    const sent = Object.values(quay.calls()).reduce((a, b) => a + b, 0);
    const rate = sent / seconds;
    const detail = `${sent} requests in ${seconds.toFixed(1)} s (${
      rate.toFixed(2)
    }/s): ${ok} ok, ${throttled} 429`;
    // deno-lint-ignore no-console
    console.log(`paced client under a 2/s limit: ${detail}`);
    assert.ok(rate <= 2.4, detail);
    // Still useful work: at least half of what Quay allows.
    assert.ok(ok / seconds >= 1, detail);
    assert.ok(Number.isFinite(client.rate), "the client paces itself after the first 429");
  } finally {
    client.close();
    await quay.close();
  }
});

Deno.test("a Retry-After pauses every call of the client until it has passed", async () => {
  const quay = await startQuayWorld();
  const client = new QuayClient({ baseUrl: quay.url, caBundle: quay.caPem, token: () => quay.adminToken });
  try {
    quay.faults.throttleNext(1, { retryAfterSeconds: 2 });
    const started = performance.now();
    await assert.rejects(client.getUser(), (e) => e instanceof QuayApiError && e.retryAfterSeconds === 2);
    // Another call, of another route, waits out the pause rather than being sent at once.
    await client.listRepositories("quayadmin");
    assert.ok(performance.now() - started >= 1_900, `${performance.now() - started} ms`);
    assert.equal(quay.faults.injected().throttle, 1);
  } finally {
    client.close();
    await quay.close();
  }
});
