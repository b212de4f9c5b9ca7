/**
 * @module
 * The benchmark's command line and its honest reporting of a time limit, as pure logic: durations,
 * which scenarios the flags select, the figures of a burst stopped at the limit, the ratio that is
 * then only a bound, and how the table and the targets show it.
 */
import assert from "node:assert/strict";
import {
  boundedRatios,
  burstFigures,
  type Comparison,
  defaultTimeLimitMs,
  ratios,
} from "../../bench/compare.ts";
import { parseDuration } from "../../bench/duration.ts";
import { quayKinds, selectedBenchmarks } from "../../bench/main.ts";
import type { MemoryComparison } from "../../bench/memory.ts";
import { formatComparison, formatMemory, judgeComparison, judgeMemory } from "../../bench/report.ts";

Deno.test("--time-limit durations: units, sums, bare seconds; anything else is refused by name", () => {
  assert.equal(parseDuration("15m"), 900_000);
  assert.equal(parseDuration("900"), 900_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("250ms"), 250);
  for (const bad of ["", "15 minutes", "m", "0s", "-5m", "10x", "5m3"]) {
    assert.throws(
      () => parseDuration(bad),
      (e: Error) => e instanceof RangeError && e.message.includes(`"${bad}"`),
    );
  }
});

Deno.test("the default time limit grows with the burst, faster on the real Quay, and stops at 15 min", () => {
  assert.equal(defaultTimeLimitMs(100), 110_000);
  assert.equal(defaultTimeLimitMs(1000), 560_000);
  assert.equal(defaultTimeLimitMs(10_000), 900_000);
  assert.equal(defaultTimeLimitMs(20, "real"), 260_000);
  assert.equal(defaultTimeLimitMs(100, "real"), 900_000);
});

Deno.test("flags select the scenarios: the memory scenario alone, or with the comparison", () => {
  assert.deepEqual(selectedBenchmarks([]), ["compare"]);
  assert.deepEqual(selectedBenchmarks(["--quick", "--out=x.json"]), ["compare"]);
  assert.deepEqual(selectedBenchmarks(["--memory-scenario"]), ["memory"]);
  assert.deepEqual(selectedBenchmarks(["--memory-scenario", "--quay=world,real"]).sort(), [
    "compare",
    "memory",
  ]);
  assert.deepEqual(selectedBenchmarks(["--size=10000", "--memory-scenario"]).sort(), ["compare", "memory"]);
  assert.deepEqual(selectedBenchmarks(["--only=kube", "--memory-scenario"]).sort(), ["kube", "memory"]);
  assert.deepEqual(quayKinds(undefined), ["world"]);
  assert.deepEqual(quayKinds("world,real"), ["world", "real"]);
  assert.throws(() => quayKinds("staging"), /--quay=staging/);
});

Deno.test("a burst stopped at the limit says so: converged count, time per converged namespace, no time", () => {
  const stopped = burstFigures(10_000, null, 900_400, 4_500);
  assert.equal(stopped.converge_s_10000, null);
  assert.equal(stopped.lag_s_10000, null);
  assert.equal(stopped.converge_limit_s_10000, 900.4);
  assert.equal(stopped.converged_namespaces_10000, 4500);
  assert.equal(stopped.converge_ms_per_namespace_10000, 200.1);
  const done = burstFigures(100, 2000, 5000, 100);
  assert.equal(done.converge_s_100, 5);
  assert.equal(done.lag_s_100, 2);
  assert.equal(done.converge_ms_per_namespace_100, 50);
  assert.equal("converge_limit_s_100" in done, false);
  assert.equal(burstFigures(5, null, 60_000, 0).converge_ms_per_namespace_5, null);
});

Deno.test("the time ratio is a bound when one operator was stopped, absent when both were", () => {
  const keys = [["converge_s_10000", "converge_limit_s_10000"]] as const;
  const ours = burstFigures(10_000, 60_000, 90_000, 10_000);
  const theirs = burstFigures(10_000, null, 900_000, 5_000);
  assert.deepEqual(boundedRatios(ours, theirs, keys), {
    ratios: { converge_s_10000: 0.1 },
    bounds: { converge_s_10000: "<=" },
  });
  assert.deepEqual(boundedRatios(theirs, ours, keys), {
    ratios: { converge_s_10000: 10 },
    bounds: { converge_s_10000: ">=" },
  });
  assert.deepEqual(boundedRatios(theirs, theirs, keys), { ratios: {}, bounds: {} });
  // The plain ratios leave the stopped time out and compare the rates.
  const plain = ratios(ours, theirs);
  assert.equal(plain.converge_s_10000, null);
  assert.equal(plain.converge_ms_per_namespace_10000, 0.05);
  assert.equal("converge_limit_s_10000" in plain, false);
});

function comparison(ours: Record<string, number | null>, theirs: Record<string, number | null>): Comparison {
  const bounded = boundedRatios(ours, theirs, [["converge_s_1000", "converge_limit_s_1000"]]);
  return {
    quay: "world",
    sizes: [1000],
    imageStreams: 3,
    idleSeconds: 60,
    timeLimitS: { "1000": 560 },
    peers: { "quay-bridge": ours, upstream: theirs },
    ratios: { ...ratios(ours, theirs), ...bounded.ratios },
    bounds: bounded.bounds,
  };
}

Deno.test("a bound decides the 0.1× target only in the direction it bounds; the table marks it", () => {
  const target = (c: Comparison) => judgeComparison(c).find((t) => t.figure === "converge_s_1000");
  // Upstream stopped at 560 s, quay-bridge converged in 40 s: the ratio is at most 0.071, met.
  const upstreamStopped = comparison(
    burstFigures(1000, 30_000, 40_000, 1000),
    burstFigures(1000, null, 560_000, 900),
  );
  assert.equal(target(upstreamStopped)?.met, true);
  assert.match(target(upstreamStopped)?.name ?? "", /upstream stopped at the time limit/);
  const table = formatComparison(upstreamStopped, judgeComparison(upstreamStopped));
  assert.match(table, /\| +> 560 \| +40 \| +≤ 0\.071 \|/);
  // quay-bridge stopped at 560 s, upstream converged in 2,000 s: at least 0.28, missed.
  const oursStopped = comparison(
    burstFigures(1000, null, 560_000, 900),
    burstFigures(1000, 1_900_000, 2_000_000, 1000),
  );
  assert.equal(target(oursStopped)?.met, false);
  assert.equal(target(oursStopped)?.inconclusive, undefined);
  // quay-bridge stopped at 560 s, upstream converged in 10,000 s: at least 0.056, which decides nothing.
  const undecided = comparison(
    burstFigures(1000, null, 560_000, 900),
    burstFigures(1000, 9_900_000, 10_000_000, 1000),
  );
  assert.equal(target(undecided)?.inconclusive, true);
  assert.match(
    formatComparison(undecided, judgeComparison(undecided)),
    /N\/A +1,000 new namespaces: time to converged ≤ 0\.1× upstream \(quay-bridge stopped at the time limit\) +ratio ≥ 0\.056/,
  );
});

Deno.test("the memory target is judged at the full size only, and not when the operator was stopped", () => {
  const memory = (namespaces: number, ours: Record<string, number | null>): MemoryComparison => ({
    namespaces,
    imageStreams: 5,
    secrets: namespaces * 3,
    scaled: namespaces < 10_000,
    timeLimitS: 900,
    peers: { "quay-bridge": ours, upstream: { rss_after_converged_mib: 300 } },
    ratios: {},
    bounds: {},
  });
  const [full] = judgeMemory(memory(10_000, { rss_after_converged_mib: 240 }));
  assert.equal(full?.met, true);
  assert.equal(full?.inconclusive, undefined);
  assert.equal(judgeMemory(memory(10_000, { rss_after_converged_mib: 260 }))[0]?.met, false);
  assert.equal(judgeMemory(memory(200, { rss_after_converged_mib: 100 }))[0]?.inconclusive, true);
  const stopped = memory(10_000, { rss_after_converged_mib: 100, converge_limit_s: 900, converge_s: null });
  assert.equal(judgeMemory(stopped)[0]?.inconclusive, true);
  assert.match(
    formatMemory(stopped, judgeMemory(stopped)),
    /s from start to every namespace converged +\| +n\/a \| +> 900 \|/,
  );
});
