/**
 * @module
 * Each fault knob of the Quay world, observed from a Deno fetch client over HTTPS: latency, server
 * errors (Quay JSON and proxy HTML, seeded), 429 with Retry-After, token-bucket limits, connection
 * resets, outages with recovery on the same port, per-route failures and scoping.
 */
import assert from "node:assert/strict";
import { startQuayWorld } from "./mod.ts";
import { createOrg, type Harness, withQuay } from "./testing.ts";

async function statuses(h: Harness, n: number, path = "/api/v1/user/"): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await h.call("GET", path)).status);
  return out;
}

async function transportError(h: Harness, path = "/api/v1/user/", signal?: AbortSignal): Promise<Error> {
  try {
    const r = await fetch(h.quay.url + path, {
      client: h.client,
      headers: { authorization: `Bearer ${h.quay.adminToken}` },
      signal,
    });
    await r.body?.cancel();
  } catch (error) {
    return error as Error;
  }
  throw new Error(`expected ${path} to fail without an HTTP answer`);
}

Deno.test("quay world adds the configured latency and jitter to requests in scope", async () => {
  await withQuay({}, async (h) => {
    await h.call("GET", "/api/v1/user/");
    h.quay.faults.latency({ ms: 80, jitterMs: 40, scope: "api" });
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
      const took = performance.now() - t;
      assert.ok(took >= 79 && took < 400, `took ${took} ms`);
    }
    const t = performance.now();
    await h.call("GET", "/v2/", { token: null });
    assert.ok(performance.now() - t < 60, "registry routes are outside the api scope");
    h.quay.faults.latency(null);
    assert.equal(h.quay.faults.injected().latency, 3);
  });
});

Deno.test("quay world answers a seeded fraction of requests with Quay JSON errors or proxy HTML pages", async () => {
  await withQuay({}, async (h) => {
    h.quay.faults.errorRate({ rate: 1, kinds: ["json"] });
    for (let i = 0; i < 6; i++) {
      const r = await h.call("GET", "/api/v1/user/");
      assert.ok([500, 520].includes(r.status), String(r.status));
      assert.ok(r.json !== undefined, "Quay's own errors are JSON");
      if (r.status === 520) assert.equal((r.json as { error_type: string }).error_type, "downstream_issue");
    }
    h.quay.faults.errorRate({ rate: 1, kinds: ["html"] });
    const r = await h.call("GET", "/api/v1/user/");
    assert.ok([502, 503, 504].includes(r.status));
    assert.equal(r.headers.get("content-type"), "text/html");
    assert.match(r.text, /<center>nginx<\/center>/);
    assert.equal(r.json, undefined);
    h.quay.faults.errorRate(null);
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
  });
});

Deno.test("quay world error rates are deterministic for a seed and request order", async () => {
  const runs: number[][] = [];
  for (const seed of [7, 7, 8]) {
    await withQuay({ seed }, async (h) => {
      h.quay.faults.errorRate({ rate: 0.5 });
      runs.push(await statuses(h, 30));
    });
  }
  assert.deepEqual(runs[0], runs[1]);
  assert.notDeepEqual(runs[0], runs[2]);
  const failed = runs[0]?.filter((s) => s !== 200).length ?? 0;
  assert.ok(failed > 5 && failed < 25, `${failed} of 30 failed`);
});

Deno.test("quay world throttles the next requests with 429 and Retry-After", async () => {
  await withQuay({}, async (h) => {
    h.quay.faults.throttleNext(2, { retryAfterSeconds: 3 });
    for (let i = 0; i < 2; i++) {
      const r = await h.call("GET", "/api/v1/user/");
      assert.equal(r.status, 429);
      assert.equal(r.headers.get("retry-after"), "3");
    }
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
  });
});

Deno.test("quay world enforces a token-bucket rate limit with Retry-After", async () => {
  await withQuay({}, async (h) => {
    h.quay.faults.rateLimit({ ratePerSecond: 5, burst: 2 });
    assert.deepEqual(await statuses(h, 2), [200, 200]);
    const limited = await h.call("GET", "/api/v1/user/");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "1");
    await new Promise((r) => setTimeout(r, 250));
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    h.quay.faults.rateLimit(null);
    assert.deepEqual(await statuses(h, 5), [200, 200, 200, 200, 200]);
  });
});

Deno.test("quay world resets connections without an HTTP answer, a transport error for fetch", async () => {
  await withQuay({}, async (h) => {
    h.quay.faults.resetRate({ rate: 1 });
    const error = await transportError(h);
    assert.ok(error instanceof TypeError, String(error));
    h.quay.faults.resetRate(null);
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    assert.equal(h.quay.faults.injected().reset, 1);
  });
});

Deno.test("quay world refuses connections during an outage and recovers on the same port", async () => {
  await withQuay({}, async (h) => {
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    await h.quay.faults.outage({ mode: "refuse" });
    const error = await transportError(h);
    assert.ok(error instanceof TypeError, String(error));
    const fresh = Deno.createHttpClient({ caCerts: [h.quay.caPem] });
    try {
      await assert.rejects(fetch(`${h.quay.url}/api/v1/user/`, { client: fresh }), /fetch failed/);
    } finally {
      fresh.close();
    }
    await h.quay.faults.restore();
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
  });
});

Deno.test("quay world holds requests during a hanging outage and serves them after restore", async () => {
  await withQuay({}, async (h) => {
    await h.quay.faults.outage({ mode: "hang", scope: "api" });
    const timedOut = await transportError(h, "/api/v1/user/", AbortSignal.timeout(150));
    assert.equal(timedOut.name, "TimeoutError");
    assert.equal((await h.call("GET", "/v2/", { token: null })).status, 401, "registry still answers");
    const pending = h.call("GET", "/api/v1/user/");
    await new Promise((r) => setTimeout(r, 100));
    await h.quay.faults.restore();
    assert.equal((await pending).status, 200);
  });
});

Deno.test("quay world drops only in-scope connections when a refusing outage is scoped", async () => {
  await withQuay({}, async (h) => {
    await h.quay.faults.outage({ mode: "refuse", scope: "api" });
    assert.ok((await transportError(h)) instanceof TypeError);
    assert.equal((await h.call("GET", "/v2/", { token: null })).status, 401);
    await h.quay.faults.restore();
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
  });
});

Deno.test("quay world fails one route a given number of times", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    h.quay.faults.failRoute("POST /api/v1/repository", { status: 500, times: 2 });
    const body = { namespace: "acme", repository: "app", visibility: "private", description: "" };
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) seen.push((await h.call("POST", "/api/v1/repository", { body })).status);
    assert.deepEqual(seen, [500, 500, 201]);
    assert.equal((await h.call("GET", "/api/v1/repository/acme/app")).status, 200, "other routes unaffected");
    h.quay.faults.failRoute("GET /api/v1/organization/{org}", {
      status: 429,
      retryAfterSeconds: 2,
      times: 1,
    });
    const throttled = await h.call("GET", "/api/v1/organization/acme");
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get("retry-after"), "2");
    h.quay.faults.failRoute("GET /api/v1/user/", { reset: true, times: 1 });
    assert.ok((await transportError(h)) instanceof TypeError);
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    assert.throws(() => h.quay.faults.failRoute("POST /api/v1/repositories", { status: 500 }), RangeError);
  });
});

Deno.test("quay world scopes faults to registry routes only", async () => {
  await withQuay({}, async (h) => {
    h.quay.faults.errorRate({ rate: 1, scope: "registry", kinds: ["json"] });
    assert.equal((await h.call("GET", "/api/v1/user/")).status, 200);
    const r = await h.call("GET", "/v2/", { token: null });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, { errors: [{ code: "UNKNOWN", message: "unknown error", detail: {} }] });
    await h.quay.faults.clear();
    assert.equal((await h.call("GET", "/v2/", { token: null })).status, 401);
  });
});

Deno.test("quay world counts calls by route template, faulted ones included", async () => {
  await withQuay({}, async (h) => {
    await createOrg(h, "acme");
    await h.call("GET", "/api/v1/organization/acme");
    await h.call("GET", "/api/v1/organization/other");
    h.quay.faults.throttleNext(1);
    await h.call("GET", "/api/v1/organization/acme");
    await h.call("GET", "/no/such/path");
    assert.deepEqual(h.quay.calls(), {
      "POST /api/v1/organization/": 1,
      "GET /api/v1/organization/{org}": 3,
      "GET (unmatched)": 1,
    });
    h.quay.resetCalls();
    assert.deepEqual(h.quay.calls(), {});
    assert.ok(h.quay.routes().includes("PUT /v2/{name}/manifests/{reference}"));
  });
});

Deno.test("quay world close() leaves nothing running and frees the port", async () => {
  const quay = await startQuayWorld();
  const client = Deno.createHttpClient({ caCerts: [quay.caPem] });
  const r = await fetch(`${quay.url}/api/v1/user/`, {
    client,
    headers: { authorization: `Bearer ${quay.adminToken}` },
  });
  await r.body?.cancel();
  await quay.faults.outage({ mode: "hang" });
  const held = fetch(`${quay.url}/api/v1/user/`, { client }).then((x) => x.body?.cancel(), () => undefined);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await quay.close();
  await held;
  await quay.close();
  await assert.rejects(fetch(`${quay.url}/api/v1/user/`, { client }));
  client.close();
  const port = Number(new URL(quay.url).port);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

/** One keep-alive HTTP/1.1 connection over TLS; `request` sends a GET and reads one whole answer. */
async function keepAliveConnection(url: string, caPem: string, token: string) {
  const { default: tls } = await import("node:tls");
  const { port } = new URL(url);
  const socket = tls.connect({ host: "127.0.0.1", port: Number(port), ca: caPem, servername: "localhost" });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  let isClosed = false;
  const closed = new Promise<number>((resolve) =>
    socket.once("close", () => {
      isClosed = true;
      resolve(performance.now());
    })
  );
  let buffer = "";
  socket.on("data", (chunk: Uint8Array) => buffer += new TextDecoder().decode(chunk));
  socket.on("error", () => {});
  return {
    closed,
    async request(path: string): Promise<number> {
      buffer = "";
      socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\n\r\n`);
      for (;;) {
        const head = buffer.indexOf("\r\n\r\n");
        const length = /content-length: (\d+)/i.exec(buffer)?.[1];
        if (head >= 0 && length !== undefined && buffer.length >= head + 4 + Number(length)) {
          return Number(buffer.slice(9, 12));
        }
        if (isClosed) throw new Error(`connection closed before the answer to ${path}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    destroy: () => socket.destroy(),
  };
}

Deno.test("quay world closes a keep-alive connection idle between requests, never one whose request is being served", async () => {
  const quay = await startQuayWorld({ idleTimeoutMs: 300 });
  try {
    const idle = await keepAliveConnection(quay.url, quay.caPem, quay.adminToken);
    assert.equal(await idle.request("/api/v1/user/"), 200);
    const answered = performance.now();
    const closedAt = await Promise.race([
      idle.closed,
      new Promise<number>((r) => setTimeout(() => r(Infinity), 3_000)),
    ]);
    assert.ok(
      closedAt - answered >= 250 && closedAt - answered < 2_000,
      `closed ${closedAt - answered} ms after`,
    );

    // A request slower than the idle timeout keeps its connection and gets its answer.
    quay.faults.latency({ ms: 900 });
    const slow = await keepAliveConnection(quay.url, quay.caPem, quay.adminToken);
    let closedEarly = false;
    slow.closed.then(() => closedEarly = true);
    assert.equal(await slow.request("/api/v1/user/"), 200);
    assert.equal(closedEarly, false);
    slow.destroy();
    await slow.closed;
  } finally {
    await quay.close();
  }
});
