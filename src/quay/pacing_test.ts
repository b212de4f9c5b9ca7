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
