/**
 * @module
 * `deno task bench` runs: the side-by-side benchmark at its smallest size (`--quick`: a burst of 5
 * namespaces, a 5 s idle window, a restart, 2 s of webhook load), quay-bridge and the upstream
 * operator each on a fresh real kube-apiserver and Quay. It proves the harness works end to end, not
 * the performance targets (those are for the full run, `bench/results/latest.json`). The upstream operator is built from
 * the source named by `QUAY_BRIDGE_UPSTREAM_SRC` (once, cached); without it the test fails saying so.
 */
import assert from "node:assert/strict";
import { upstreamSource } from "../../bench/peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("deno task bench --quick: both operators converge and every figure is measured", async () => {
  const source = upstreamSource();
  assert.ok(
    source,
    "QUAY_BRIDGE_UPSTREAM_SRC (or shared/upstream-qbo/ beside the repository) must name a tarball or directory of github.com/quay/quay-bridge-operator " +
      "with its vendor/ tree: the benchmark runs the upstream operator side by side with quay-bridge",
  );
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-bench-" });
  try {
    const out = `${dir}/results.json`;
    // The bench task's command line, so a permission it lacks fails here.
    const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.bench as string;
    const args = task.split(/\s+/).slice(1);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--quick", `--out=${out}`],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const summary = JSON.parse(await Deno.readTextFile(out));
    const { peers, ratios } = summary.compare;
    for (const name of ["quay-bridge", "upstream"]) {
      const figures = peers[name];
      assert.equal(figures.converged_namespaces_5, 5, `${name}: every namespace of the burst converged`);
      for (const [key, value] of Object.entries(figures)) {
        assert.equal(typeof value, "number", `${name}: ${key} was measured`);
      }
      assert.ok(figures.rss_idle_mib > 10, `${name}: resident memory read from /proc`);
      assert.ok(figures.quay_calls_new_namespace_0is > 0, `${name}: Quay calls counted`);
      // Restarted with every namespace synced, then its own webhook loaded over TLS.
      assert.ok(figures.restart_ready_s > 0, `${name}: time to ready after a restart measured`);
      assert.ok(figures.webhook_best_rps > 0, `${name}: its webhook answered patches`);
      assert.equal(figures.webhook_c16_errors, 0, `${name}: every admission was a patch`);
    }
    // Upstream re-reconciles every namespace after a restart: its calls are counted.
    assert.ok(peers.upstream.restart_quay_calls > 0, "upstream's Quay calls after the restart counted");
    assert.equal(typeof ratios.converge_s_5, "number");
    assert.match(stderr, /\| figure +\| upstream \| quay-bridge \| ratio \|/);
    assert.match(stderr, /(PASS|MISS) {2}Quay calls per ImageStream update = 0/);
    assert.match(stderr, /(PASS|MISS) {2}start-up with 7 synced namespaces: Quay calls ≤ 7 \/ 100 \+ \d+ /);
    assert.match(
      stderr,
      /(PASS|MISS) {2}webhook: ≥ 20,000 admissions\/s +\d+ \(upstream at 16 connections: \d+\)/,
    );
    assert.ok(summary.environment.commit, "the results name the commit");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
