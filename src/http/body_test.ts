import assert from "node:assert/strict";
import { readBody, type ReadBodyOptions } from "./body.ts";

/** A request whose body is streamed in `chunks` (no content-length); counts the chunks pulled. */
function streamed(chunks: Uint8Array[]): { request: Request; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks[pulled++];
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
  return { request: new Request("http://x/", { method: "POST", body }), pulled: () => pulled };
}

const kib = (n: number) => new Uint8Array(n * 1024).fill(0x61);
const strict: ReadBodyOptions = { limit: 4096, oversized: "cancel", utf8: "strict" };
const drain: ReadBodyOptions = { limit: 4096, oversized: { drainUpTo: 16 * 1024 }, utf8: "replace" };

Deno.test("readBody: within the limit, declared or streamed, the text comes back", async () => {
  const declared = new Request("http://x/", { method: "POST", body: "héllo" });
  assert.deepEqual(await readBody(declared, strict), { ok: true, text: "héllo" });
  assert.deepEqual(await readBody(streamed([kib(1), kib(3)]).request, strict), {
    ok: true,
    text: "a".repeat(4096),
  });
  assert.deepEqual(await readBody(new Request("http://x/", { method: "POST" }), strict), {
    ok: true,
    text: "",
  });
});

Deno.test("readBody: a declared oversized body is too large under either policy", async () => {
  for (const options of [strict, drain]) {
    const r = await readBody(new Request("http://x/", { method: "POST", body: kib(5) }), options);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, "too_large");
  }
});

Deno.test("readBody: cancel stops at the first chunk over the limit; drain reads on to its cap", async () => {
  const chunks = () => [kib(3), kib(3), kib(3), kib(3)];
  const cancelled = streamed(chunks());
  const a = await readBody(cancelled.request, strict);
  assert.equal(!a.ok && a.reason, "too_large");
  assert.equal(cancelled.pulled(), 2, "stopped at the second 3 KiB chunk");

  const drained = streamed(chunks());
  const b = await readBody(drained.request, drain);
  assert.equal(!b.ok && b.reason, "too_large");
  assert.equal(drained.pulled(), 5, "read every chunk (and the end) to answer cleanly");

  const beyond = streamed([kib(12), kib(12), kib(12)]);
  const c = await readBody(beyond.request, drain);
  assert.equal(!c.ok && c.reason, "too_large");
  assert.equal(beyond.pulled(), 2, "given up past the drain cap");
});

Deno.test("readBody: invalid UTF-8 is refused (strict) or replaced", async () => {
  const bad = () => new Request("http://x/", { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) });
  const a = await readBody(bad(), strict);
  assert.equal(!a.ok && a.reason, "not_utf8");
  assert.deepEqual(await readBody(bad(), drain), { ok: true, text: "{\ufffd}" });
});

Deno.test("readBody: a body that fails mid-read is unreadable, not a throw", async () => {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) controller.error(new Error("connection reset"));
      else controller.enqueue(kib(1));
      sent = true;
    },
  });
  const r = await readBody(new Request("http://x/", { method: "POST", body }), strict);
  assert.equal(!r.ok && r.reason, "unreadable");
  assert.match(!r.ok ? r.message : "", /connection reset/);
});
