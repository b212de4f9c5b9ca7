/** The operator's own namespace is never given a Quay organization unless allow-listed. */
import assert from "node:assert/strict";
import { OPERATOR_NAMESPACE, startBridge, synced, until } from "../integration/harness.ts";
import { figure } from "./suite.ts";

Deno.test("the operator's namespace gets no organization by default", async () => {
  const b = await startBridge();
  try {
    await b.createProject("team");
    await synced(b, "team");
    const operator = b.running?.operator;
    await until("operator namespace judged", () => operator?.outcomes.get(OPERATOR_NAMESPACE)?.state);
    assert.equal(operator?.outcomes.get(OPERATOR_NAMESPACE)?.state, "Unmanaged");
    const org = await b.quay.call("GET", `/api/v1/organization/openshift_${OPERATOR_NAMESPACE}`);
    assert.equal(org.status, 404);
    figure("the operator's own namespace", 1, 1, "no organization");
  } finally {
    await b.close();
  }
});
