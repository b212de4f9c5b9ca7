/**
 * The webhook port answers anyone who can reach it. Slow and silent clients are cut by the
 * connection guard (first-byte and request timeouts), only `application/json` is accepted, and
 * invalid requests cost a debug line each and a warning a minute, never a warning each.
 */
import assert from "node:assert/strict";
import { createCertificateAuthority, issueServingCertificate } from "../../src/certs/pki.ts";
import { createLogger } from "../../src/log.ts";
import { createWebhookApp } from "../../src/webhook/app.ts";
import { serveWebhook } from "../../src/webhook/server.ts";
import { buildReview, decodeReview, MemoryPort, readyTarget } from "../webhook/fixtures.ts";
import { seededRandom } from "../world/quay/faults.ts";
import { figure, size } from "./suite.ts";

const SLOW = size(300, 1_000);
const RANDOM = size(300, 5_000);

async function startServer(lines: string[] = []) {
  const ca = await createCertificateAuthority({ commonName: "hostile-test-ca" });
  const pair = await issueServingCertificate(ca, { commonName: "localhost", ipAddresses: ["127.0.0.1"] });
  const port = new MemoryPort();
  port.targets.set("team-a", readyTarget("team-a"));
  const closed: string[] = [];
  const server = serveWebhook({
    handler: createWebhookApp({ admissionPort: port, logger: createLogger({ sink: (l) => lines.push(l) }) })
      .fetch,
    ...pair,
    hostname: "127.0.0.1",
    port: 0,
    drainGraceMs: 50,
    guard: { firstByteTimeoutMs: 1_000, requestTimeoutMs: 2_000, maxConnections: 4 * SLOW },
    onGuardClose: (reason) => closed.push(reason),
  });
  const client = Deno.createHttpClient({ caCerts: [ca.certPem] });
  return { server, client, closed, caPem: ca.certPem };
}

/** Resolves when the server closes `conn` (a read ends or fails). */
async function closedByServer(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  try {
    while (await conn.read(buffer) !== null) { /* keep reading */ }
  } catch {
    // reset
  }
}

Deno.test(`the webhook cuts ${SLOW} slow and silent connections and keeps answering`, async () => {
  const { server, client, closed, caPem } = await startServer();
  const conns: Deno.Conn[] = [];
  try {
    // Half say nothing at all; half complete TLS, then send headers one byte at a time.
    const ends: Promise<number>[] = [];
    const track = (conn: Deno.Conn) => {
      const opened = performance.now();
      conns.push(conn);
      ends.push(closedByServer(conn).then(() => performance.now() - opened));
    };
    for (let i = 0; i < SLOW / 2; i++) {
      track(await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
    }
    const head = new TextEncoder().encode("POST /admissionwebhook HTTP/1.1\r\nhost: 127.0.0.1\r\nx-pad: ");
    for (let i = 0; i < SLOW / 2; i++) {
      const tls = await Deno.connectTls({ hostname: "127.0.0.1", port: server.addr.port, caCerts: [caPem] });
      await tls.handshake();
      await tls.write(head);
      track(tls);
    }
    const slow = conns.slice(SLOW / 2);
    const timer = setInterval(() => {
      for (const c of slow) c.write(new Uint8Array([0x61])).catch(() => {});
    }, 200);
    // Meanwhile a real admission is answered.
    const response = await fetch(`https://127.0.0.1:${server.addr.port}/admissionwebhook`, {
      method: "POST",
      body: JSON.stringify(buildReview()),
      headers: { "content-type": "application/json" },
      client,
    });
    assert.equal(response.status, 200);
    assert.equal(decodeReview(await response.json()).response.allowed, true);
    const closedAfter = await Promise.race([
      Promise.all(ends),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 6_000)),
    ]);
    clearInterval(timer);
    assert.ok(
      closedAfter,
      `not every slow connection was closed within 6 s of the last one opening (${closed.length} closed)`,
    );
    assert.ok(Math.max(...closedAfter) < 5_000, `the last one lasted ${Math.max(...closedAfter)} ms`);
    assert.ok(closed.includes("first-byte-timeout") && closed.includes("request-timeout"));
    figure(
      "slow and silent webhook connections",
      SLOW,
      SLOW,
      `each closed within ${
        (Math.max(...closedAfter) / 1000).toFixed(1)
      } s of opening; admissions answered meanwhile`,
    );
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    client.close();
    await server.close();
  }
});

Deno.test("the webhook answers 415 to anything but application/json, and logs one warning for a flood", async () => {
  const lines: string[] = [];
  const { server, client } = await startServer(lines);
  try {
    const url = `https://127.0.0.1:${server.addr.port}/admissionwebhook`;
    const body = JSON.stringify(buildReview());
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", ""]) {
      const r = await fetch(url, {
        method: "POST",
        body,
        headers: type ? { "content-type": type } : {},
        client,
      });
      assert.equal(r.status, 415, type);
      assert.equal((await r.json()).reason, "UnsupportedMediaType");
    }
    const ok = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json; charset=utf-8" },
      client,
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    for (let i = 0; i < 200; i++) {
      const r = await fetch(url, {
        method: "POST",
        body: "{not json",
        headers: { "content-type": "application/json" },
        client,
      });
      assert.equal(r.status, 400);
      await r.body?.cancel();
    }
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === "warn" || l.level === "error");
    assert.ok(warnings.length <= 1, `${warnings.length} warnings for 204 invalid requests`);
    figure("wrong Content-Type and invalid-request flood", 204, 204, `${warnings.length} warning line`);
  } finally {
    client.close();
    await server.close();
  }
});

/** A random mutation of a real AdmissionReview, or random bytes, or a huge body. */
function hostileBody(random: () => number, i: number): Uint8Array<ArrayBuffer> {
  const review = JSON.stringify(buildReview({ namespace: "team-a", name: `b-${i}` }));
  const bytes = new TextEncoder().encode(review);
  switch (i % 4) {
    case 0: // random bytes
      return crypto.getRandomValues(new Uint8Array(Math.floor(random() * 2_000)));
    case 1: { // flipped bytes
      const copy = bytes.slice();
      for (let k = 0; k < 1 + random() * 20; k++) copy[Math.floor(random() * copy.length)] = random() * 256;
      return copy;
    }
    case 2: // truncated
      return bytes.slice(0, Math.floor(random() * bytes.length));
    default: // oversized: 4 MiB of padding inside a valid review
      return new TextEncoder().encode(
        JSON.stringify(buildReview({ annotations: { pad: "x".repeat(4 * 1024 * 1024) } })),
      );
  }
}

Deno.test(`${RANDOM} random, structured and oversized AdmissionReviews over TLS: never a 5xx`, async () => {
  const { server, client } = await startServer();
  const random = seededRandom(7);
  const statuses = new Map<number, number>();
  try {
    const url = `https://127.0.0.1:${server.addr.port}/admissionwebhook`;
    for (let i = 0; i < RANDOM; i++) {
      const r = await fetch(url, {
        method: "POST",
        body: hostileBody(random, i),
        headers: { "content-type": "application/json" },
        client,
      });
      await r.body?.cancel();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const good = await fetch(url, {
      method: "POST",
      body: JSON.stringify(buildReview()),
      headers: { "content-type": "application/json" },
      client,
    });
    assert.equal(good.status, 200);
    await good.body?.cancel();
    const errors = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    assert.equal(errors, 0, JSON.stringify([...statuses]));
    figure(
      "hostile AdmissionReviews (random, mutated, truncated, 4 MiB)",
      RANDOM,
      RANDOM - errors,
      [...statuses].map(([s, c]) => `${c}×${s}`).join(", "),
    );
  } finally {
    client.close();
    await server.close();
  }
});
