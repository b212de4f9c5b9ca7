/**
 * @module
 * The summary of a V8 CPU profile (`bench/profile.ts`): self time by function and by module.
 */
import assert from "node:assert/strict";
import { summarize } from "../../bench/profile.ts";

Deno.test("a CPU profile is summed by function and by module, the largest first", () => {
  const frame = (functionName: string, url: string, lineNumber: number) => ({
    functionName,
    url,
    lineNumber,
  });
  const { functions, modules } = summarize({
    nodes: [
      { id: 1, callFrame: frame("(root)", "", 0) },
      { id: 2, callFrame: frame("plan", "file:///work/main/src/controller/plan.ts", 9) },
      { id: 3, callFrame: frame("", "file:///work/main/src/controller/plan.ts", 41) },
      { id: 4, callFrame: frame("(garbage collector)", "", 0) },
    ],
    samples: [2, 2, 3, 4, 4, 4, 9],
    timeDeltas: [1000, 1000, 500, 2000, 2000, 2000, 700],
  });
  assert.deepEqual(functions, [
    ["(garbage collector) (native):1", 6],
    ["plan src/controller/plan.ts:10", 2],
    ["(anonymous) src/controller/plan.ts:42", 0.5],
  ]);
  assert.deepEqual(modules, [["(native)", 6], ["src/controller/plan.ts", 2.5]]);
});
