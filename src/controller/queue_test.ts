import assert from "node:assert/strict";
import { silentLogger } from "../log.ts";
import { QuayApiError } from "../errors.ts";
import { type Action, AWAIT_CHANGE, requeueAfter, WorkQueue } from "./queue.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

Deno.test("work queue runs a key added twice while running exactly once more", async () => {
  const runs: string[] = [];
  const gate = deferred();
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    reconcile: async (key) => {
      runs.push(key);
      if (runs.length === 1) await gate.promise;
      return AWAIT_CHANGE;
    },
  });
  queue.add("a");
  await new Promise((r) => setTimeout(r, 5));
  queue.add("a");
  queue.add("a");
  gate.resolve();
  await queue.idle();
  assert.deepEqual(runs, ["a", "a"]);
  await queue.shutdown();
});

Deno.test("work queue never runs one key concurrently and caps concurrency", async () => {
  let running = 0;
  let peak = 0;
  const perKey = new Map<string, number>();
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    concurrency: 3,
    reconcile: async (key) => {
      running++;
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      assert.equal(perKey.get(key), 1, "same key ran twice at once");
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      perKey.set(key, (perKey.get(key) ?? 1) - 1);
      running--;
      return AWAIT_CHANGE;
    },
  });
  for (let i = 0; i < 30; i++) queue.add(`k${i % 7}`);
  await queue.idle();
  assert.equal(peak, 3);
  await queue.shutdown();
});

Deno.test("work queue retries transient failures with backoff and honours requeueAfter", async () => {
  let calls = 0;
  const done = deferred();
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    backoffBaseMs: 5,
    reconcile: (): Promise<Action> => {
      calls++;
      if (calls < 3) return Promise.reject(new QuayApiError("boom", { status: 503, route: "GET /x" }));
      if (calls === 3) return Promise.resolve(requeueAfter(5));
      done.resolve();
      return Promise.resolve(AWAIT_CHANGE);
    },
  });
  queue.add("a");
  await done.promise;
  assert.equal(calls, 4);
  await queue.shutdown();
});

Deno.test("work queue does not retry terminal failures soon", async () => {
  let calls = 0;
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    terminalRequeueMs: 60_000,
    reconcile: () => {
      calls++;
      return Promise.reject(new QuayApiError("bad", { status: 400, route: "POST /x" }));
    },
  });
  queue.add("a");
  await queue.idle();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(calls, 1);
  assert.equal(queue.depth, 1, "parked with a slow safety-net requeue");
  await queue.shutdown();
});

Deno.test("work queue keeps the earliest of two delayed requeues", async () => {
  const seen: number[] = [];
  const start = Date.now();
  const done = deferred();
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    reconcile: () => {
      seen.push(Date.now() - start);
      done.resolve();
      return Promise.resolve(AWAIT_CHANGE);
    },
  });
  queue.add("a", 10_000);
  queue.add("a", 10);
  await done.promise;
  assert.equal(seen.length, 1);
  assert.ok((seen[0] ?? 0) < 5_000);
  await queue.shutdown();
});

Deno.test("work queue serves the change lane before background work, and a change promotes a background key", async () => {
  const runs: string[] = [];
  const gate = deferred();
  const queue = new WorkQueue({
    name: "t",
    logger: silentLogger,
    concurrency: 1,
    reconcile: async (key) => {
      runs.push(key);
      if (key === "first") await gate.promise;
      return AWAIT_CHANGE;
    },
  });
  queue.add("first");
  for (let i = 0; i < 5; i++) queue.add(`old-${i}`, 0, "background");
  queue.add("new-a");
  queue.add("old-3"); // a change to a key waiting in the background lane
  queue.add("new-b", 0, "background");
  queue.add("new-b");
  gate.resolve();
  await queue.idle();
  assert.deepEqual(runs, ["first", "new-a", "old-3", "new-b", "old-0", "old-1", "old-2", "old-4"]);
  // A delayed background requeue stays in the background lane.
  runs.length = 0;
  const lanes = new WorkQueue({
    name: "t",
    logger: silentLogger,
    concurrency: 1,
    reconcile: (key) => {
      runs.push(key);
      return Promise.resolve(
        key === "resync" && runs.length === 1 ? requeueAfter(1, "background") : AWAIT_CHANGE,
      );
    },
  });
  lanes.add("resync");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(runs, ["resync", "resync"]);
  await queue.shutdown();
  await lanes.shutdown();
});
