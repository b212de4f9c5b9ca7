/**
 * @module
 * Parity of the test world's repository notifications with the real Quay: the same probes against
 * both, each answer reduced to what callers rely on (status, error type, the detail's first line,
 * the body's shape), and the two transcripts must be equal. Needs a running real Quay, found as in
 * `notifications_test.ts`.
 */
import assert from "node:assert/strict";
import { startQuayWorld } from "../world/quay/mod.ts";
import { startRealQuay } from "./mod.ts";

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: unknown }>;

function caller(url: string, token: string, caPem: string): { call: Call; close: () => void } {
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  return {
    close: () => client.close(),
    async call(method, path, body) {
      const r = await fetch(url + path, {
        method,
        client,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = "(not JSON)";
      }
      return { status: r.status, json };
    },
  };
}

/** What a caller relies on in an answer. */
function reduce(answer: { status: number; json: unknown }, org: string, uuid = "\u0000"): unknown {
  const j = answer.json as Record<string, unknown> | undefined;
  if (answer.status >= 400) {
    return {
      status: answer.status,
      error_type: j?.error_type,
      detail: typeof j?.detail === "string"
        ? j.detail.split("\n")[0]?.replaceAll(org, "<org>").replaceAll(uuid, "<uuid>")
        : undefined,
    };
  }
  const shape = (n: Record<string, unknown>) => ({
    keys: Object.keys(n).sort(),
    uuid: typeof n.uuid === "string" && /^[0-9a-f-]{36}$/.test(n.uuid),
    title: n.title,
    event: n.event,
    method: n.method,
    config: n.config,
    event_config: n.event_config,
    number_of_failures: n.number_of_failures,
  });
  if (j && Array.isArray(j.notifications)) {
    return {
      status: answer.status,
      notifications: (j.notifications as Record<string, unknown>[]).map(shape),
    };
  }
  if (j && typeof j === "object" && "uuid" in j) return { status: answer.status, notification: shape(j) };
  return { status: answer.status, body: j };
}

async function transcript(call: Call, org: string): Promise<unknown[]> {
  const out: unknown[] = [];
  let uuid = "\u0000"; // nothing matches until a notification exists
  const note = async (method: string, path: string, body?: unknown) => {
    const answer = await call(method, path, body);
    const probe = `${method} ${path.replaceAll(org, "<org>").replaceAll(uuid, "<uuid>")}`;
    out.push({ probe, ...reduce(answer, org, uuid) as object });
    return answer;
  };
  assert.equal(
    (await call("POST", "/api/v1/organization/", { name: org, email: `${org}@example.com` })).status,
    201,
  );
  try {
    const repo = await call("POST", "/api/v1/repository", {
      namespace: org,
      repository: "app",
      visibility: "private",
      description: "",
      repo_kind: "image",
    });
    assert.equal(repo.status, 201);
    const base = `/api/v1/repository/${org}/app/notification`;
    await note("GET", `${base}/`);
    await note("GET", `/api/v1/repository/${org}/missing/notification/`);
    const created = await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "http://127.0.0.2:9/parity" },
      eventConfig: {},
      title: "quay-bridge:parity",
    });
    await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "https://127.0.0.3:9/untitled" },
      eventConfig: {},
    });
    await note("GET", `${base}/`);
    await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "http://localhost:9/x" },
      eventConfig: {},
    });
    await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "http://127.0.0.1/x" },
      eventConfig: {},
    });
    await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "ftp://x/y" },
      eventConfig: {},
    });
    await note("POST", `${base}/`, { event: "repo_push", method: "webhook", config: {}, eventConfig: {} });
    await note("POST", `${base}/`, {
      event: "repo_push",
      method: "webhook",
      config: { url: "http://127.0.0.2/x" },
    });
    uuid = (created.json as { uuid: string }).uuid;
    await note("GET", `${base}/${uuid}`);
    await note("GET", `${base}/00000000-0000-0000-0000-000000000000`);
    await note("POST", `${base}/${uuid}`);
    await note("POST", `${base}/00000000-0000-0000-0000-000000000000`);
    await note("DELETE", `${base}/${uuid}`);
    const again = await call("DELETE", `${base}/${uuid}`);
    out.push({
      probe: "DELETE again",
      ...reduce(again, org, uuid) as object,
      sameUuid: JSON.stringify(again.json).includes(uuid),
    });
    await note("GET", `${base}/${uuid}`);
  } finally {
    await call("DELETE", `/api/v1/organization/${org}`);
  }
  return out;
}

Deno.test({
  name: "world Quay notifications answer as the real Quay does (probe transcripts equal)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const real = await startRealQuay();
    const world = await startQuayWorld();
    const r = caller(real.url, real.token, real.caPem);
    const w = caller(world.url, world.adminToken, world.caPem);
    try {
      const suffix = crypto.randomUUID().slice(0, 8);
      const [fromReal, fromWorld] = [
        await transcript(r.call, `qbparity${suffix}`),
        await transcript(w.call, `qbparity${suffix}`),
      ];
      assert.deepEqual(fromWorld, fromReal);
    } finally {
      r.close();
      w.close();
      await world.close();
    }
  },
});
