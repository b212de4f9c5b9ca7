/**
 * The deletion budget is kept on the Namespace, not in the process: an operator restarted over and
 * over while Quay refuses to delete an organization still releases the namespace once the budget,
 * counted from the first failure, is spent — it does not grant a new budget at every start.
 */
import assert from "node:assert/strict";
import { startBridge, synced, until } from "./harness.ts";

const BUDGET_S = 8;

Deno.test("a namespace's deletion is released within the budget across restarts while Quay fails the deletion", async () => {
  const b = await startBridge({ flags: ["--deletion-budget", `${BUDGET_S}s`] });
  try {
    await b.createProject("doomed");
    await synced(b, "doomed");
    b.quayWorld.faults.failRoute("DELETE /api/v1/organization/{org}", { status: 500 });

    const started = Date.now();
    await b.kube.ok("DELETE", "/api/v1/namespaces/doomed");
    const gone = async () => (await b.kube.call("GET", "/api/v1/namespaces/doomed")).status === 404;
    const marked = await until("the first failure recorded on the Namespace", async () => {
      const ns = await b.kube.ok("GET", "/api/v1/namespaces/doomed");
      return ns.metadata.annotations?.["quay.redhat.com/deletion-failing-since"];
    });
    assert.ok(Math.abs(Date.parse(marked) - started) < 5_000, `failing since ${marked}`);

    // Restart every 3 s, five times at most: each run alone is shorter than the budget, so a budget
    // that restarted with the process would never be spent.
    let restarts = 0;
    for (; restarts < 5; restarts++) {
      await new Promise((r) => setTimeout(r, 3_000));
      if (await gone()) break;
      assert.equal(await b.running?.stop(), 0);
      await b.startOperator();
    }
    await until("namespace released", gone, 60_000);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(restarts >= 2, `only ${restarts} restarts happened before the release`);
    // The budget plus one queue backoff and one restart interval at most; a budget restarted by each
    // run would release only after the last restart plus a whole budget (over 23 s).
    assert.ok(seconds < BUDGET_S + 7, `released after ${seconds} s with ${restarts} restarts`);
    assert.ok(seconds >= BUDGET_S - 1, `released after ${seconds} s, before the budget`);
    // The organization is still in Quay: left behind (the collector's business).
    assert.equal((await b.quay.call("GET", "/api/v1/organization/openshift_doomed")).status, 200);
  } finally {
    await b.close();
  }
});
