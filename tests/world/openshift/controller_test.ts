/**
 * The shared controller loop: the informer re-lists after errors and after an in-stream 410, and
 * the keyed runner coalesces wake-ups and retries failures. A scripted HTTP server plays the API
 * server so each answer is exactly the one under test.
 */
import assert from "node:assert/strict";
import { KeyedRunner, runInformer, sleep } from "./controller.ts";
import { KubeClient, type KubeObject } from "./kube_client.ts";

function item(name: string, rv: string): KubeObject {
  return { metadata: { name, resourceVersion: rv } };
}

Deno.test("the informer re-lists after a failed list and after a 410 in the watch stream", async () => {
  const requests: string[] = [];
  let lists = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    const watching = url.searchParams.has("watch");
    requests.push(watching ? `watch@${url.searchParams.get("resourceVersion")}` : "list");
    if (!watching) {
      lists++;
      if (lists === 1) return Response.json({ kind: "Status", code: 500 }, { status: 500 });
      const items = lists === 2 ? [item("a", "4")] : [item("a", "4"), item("b", "9")];
      return Response.json({ metadata: { resourceVersion: lists === 2 ? "5" : "10" }, items });
    }
    if (url.searchParams.get("resourceVersion") === "5") {
      const gone = { type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } };
      return new Response(JSON.stringify(gone) + "\n");
    }
    // A watch that stays open until the client goes away.
    return new Response(new ReadableStream({ start() {} }));
  });
  const client = new KubeClient({ url: `http://127.0.0.1:${server.addr.port}`, token: "t", caPem: "" });
  const abort = new AbortController();
  const seen: string[] = [];
  const informer = runInformer({
    client,
    path: "/api/v1/namespaces",
    onObject: (o) => seen.push(o.metadata.name),
    signal: abort.signal,
  });
  const deadline = Date.now() + 5000;
  while (seen.length < 3 && Date.now() < deadline) await sleep(10, abort.signal);
  abort.abort();
  await informer;
  client.close();
  await server.shutdown();
  assert.deepEqual(seen, ["a", "a", "b"]);
  assert.deepEqual(requests, ["list", "list", "watch@5", "list", "watch@10"]);
});

Deno.test("the keyed runner runs a key once at a time, reruns it when woken meanwhile, and retries failures", async () => {
  const abort = new AbortController();
  const log: string[] = [];
  let failOnce = true;
  const gate = Promise.withResolvers<void>();
  const runner = new KeyedRunner(async (key) => {
    log.push(`start ${key}`);
    if (key === "slow") await gate.promise;
    if (key === "flaky" && failOnce) {
      failOnce = false;
      throw new Error("transient");
    }
    log.push(`end ${key}`);
  }, abort.signal);
  runner.enqueue("slow");
  runner.enqueue("slow");
  runner.enqueue("slow");
  runner.enqueue("flaky");
  await sleep(20, abort.signal);
  gate.resolve();
  await runner.idle();
  assert.deepEqual(log.filter((l) => l.endsWith("slow")), [
    "start slow",
    "end slow",
    "start slow",
    "end slow",
  ]);
  assert.deepEqual(log.filter((l) => l.endsWith("flaky")), ["start flaky", "start flaky", "end flaky"]);
  abort.abort();
});
