import assert from "node:assert/strict";
import { withDeadline } from "./deadline.ts";

Deno.test("withDeadline: a call that settles ends its timer at once", async () => {
  // Were the timer still running, it would abort the returned signal 20 ms later.
  const signal = await withDeadline(20, undefined, (s) => Promise.resolve(s));
  await assert.rejects(
    () => withDeadline(20, undefined, () => Promise.reject(new Error("refused"))),
    /refused/,
  );
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(signal.aborted, false);
});

Deno.test("withDeadline: the signal aborts with a TimeoutError when the call outlives the deadline", async () => {
  const reason = await withDeadline(
    20,
    undefined,
    (signal) =>
      new Promise<unknown>((resolve) => signal.addEventListener("abort", () => resolve(signal.reason))),
  );
  assert.equal((reason as DOMException).name, "TimeoutError");
});

Deno.test("withDeadline: the parent's abort reaches the call with the parent's reason", async () => {
  const parent = new AbortController();
  const reason = withDeadline(
    60_000,
    parent.signal,
    (signal) =>
      new Promise<unknown>((resolve) => signal.addEventListener("abort", () => resolve(signal.reason))),
  );
  parent.abort("stopping");
  assert.equal(await reason, "stopping");
  const already = await withDeadline(60_000, parent.signal, (signal) => Promise.resolve(signal.reason));
  assert.equal(already, "stopping");
});

Deno.test("withDeadline: a settled call's signal no longer follows the parent", async () => {
  const parent = new AbortController();
  const signal = await withDeadline(60_000, parent.signal, (s) => Promise.resolve(s));
  parent.abort("later");
  assert.equal(signal.aborted, false);
});
