/**
 * The demo as a newcomer runs it: `quay-bridge demo` exits 0 and shows every walkthrough step held.
 */
import assert from "node:assert/strict";
import { runCli } from "../cli/process.ts";

Deno.test("quay-bridge demo plays the seed walkthrough and every step holds", async () => {
  const result = await runCli(["demo"], { NO_PROXY: "localhost,127.0.0.1" });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const passed = result.stdout.split("\n").filter((line) => line.startsWith("✔ "));
  assert.equal(passed.length, 10, result.stdout);
  assert.doesNotMatch(result.stdout, /✘/);
  for (
    const step of [
      /✔ Organization openshift_e2e-demo created in Quay/,
      /✔ Build output rewritten to Quay by the admission webhook/,
      /✔ ImageStream tag imported from Quay/,
      /✔ The default service account's pull secret pulls the image/,
      /✔ Delete project e2e-demo -> organization removed/,
    ]
  ) assert.match(result.stdout, step);
  assert.match(result.stdout, /All steps held/);
});
