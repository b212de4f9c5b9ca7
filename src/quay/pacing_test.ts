/**
 * @module
 * The Quay client's pacing rule on a fake clock: unlimited until Quay first answers 429, then a rate
 * halved once per burst of 429s and grown additively by what Quay serves; `Retry-After` pauses all.
 */
import assert from "node:assert/strict";
import { AdaptiveRate } from "./pacing.ts";

Deno.test("AdaptiveRate is unlimited until a 429, then halves once per burst and grows additively", () => {
  let now = 0;
  const pace = new AdaptiveRate(() => now);
  for (let i = 0; i < 4; i++) assert.equal(pace.reserve(), 0);
  assert.equal(pace.rate, Infinity);
  // Four accepted in the last second, then 429s to three requests sent in the same burst.
  for (let i = 0; i < 4; i++) pace.answered(now, 200, undefined);
  now = 100;
  pace.answered(50, 429, 2);
  pace.answered(60, 429, 2);
  pace.answered(70, 429, 2);
  assert.equal(pace.rate, 2, "half of what was accepted, cut once for the burst");
  // Retry-After pauses every request until it has passed.
  assert.equal(pace.reserve(), 2_000);
  now = 2_100;
  assert.equal(pace.reserve(), 0);
  assert.equal(pace.reserve(), 500, "then one request per 1/rate seconds");
  // Accepted requests raise the rate by 0.2 requests/s per second of them.
  for (let i = 0; i < 2; i++) pace.answered(now, 200, undefined);
  assert.ok(Math.abs(pace.rate - 2.2) < 0.01, String(pace.rate));
  // A later 429 halves it again.
  now = 3_000;
  pace.answered(2_900, 429, 1);
  assert.ok(Math.abs(pace.rate - 1.1) < 0.01, String(pace.rate));
});

Deno.test("AdaptiveRate never falls below its floor and a 503 without Retry-After changes nothing", () => {
  let now = 0;
  const pace = new AdaptiveRate(() => now);
  for (let i = 0; i < 20; i++) {
    now += 1_000;
    pace.answered(now, 429, 0);
  }
  assert.equal(pace.rate, AdaptiveRate.minRate);
  const before = pace.rate;
  pace.answered(now, 503, undefined);
  assert.equal(pace.rate, before);
  assert.equal(pace.reserve() <= 1000 / AdaptiveRate.minRate, true);
});

/**
 * Eight workers behind one client on a fake clock, 50 ms per answer: Quay answers the first `burst`
 * requests with 429 + `Retry-After: 1`, then accepts everything. Returns the seconds until the last
 * 429 was answered and until `accepted` requests were served.
 */
function simulateBurst(burst: number, accepted: number): { drained: number; served: number } {
  let now = 0;
  const pace = new AdaptiveRate(() => now);
  type Event = { t: number; answer?: { sentAt: number; status: number } };
  const events: Event[] = Array.from({ length: 8 }, () => ({ t: 0 }));
  let throttled = 0;
  let served = 0;
  let drained = 0;
  while (served < accepted) {
    events.sort((a, b) => a.t - b.t);
    const event = events.shift();
    if (!event) break;
    now = event.t;
    if (!event.answer) {
      const wait = pace.reserve();
      if (wait > 0) events.push({ t: now + wait });
      else {
        const status = throttled < burst ? 429 : 200;
        if (status === 429) throttled++;
        events.push({ t: now + 50, answer: { sentAt: now, status } });
      }
      continue;
    }
    pace.answered(event.answer.sentAt, event.answer.status, event.answer.status === 429 ? 1 : undefined);
    if (event.answer.status === 429) drained = now;
    else served++;
    events.push({ t: now });
  }
  return { drained: drained / 1000, served: now / 1000 };
}

Deno.test("AdaptiveRate drains a burst of 40 429s and is back to full speed soon after", () => {
  const { drained, served } = simulateBurst(40, 2_000);
  // deno-lint-ignore no-console
  console.log(`40 × 429 drained in ${drained.toFixed(1)} s; 2,000 requests served at ${served.toFixed(1)} s`);
  // Each 429 costs at least its Retry-After (1 s) while Quay refuses; the pacing may add little to that.
  assert.ok(drained <= 60, `drained in ${drained} s`);
  // Once Quay accepts, the rate climbs back to unpaced within seconds, not minutes: eight workers at
  // 50 ms serve 160 requests/s, so 2,000 take 12.5 s unpaced.
  assert.ok(served - drained <= 30, `2,000 served ${served - drained} s after the burst`);
});
