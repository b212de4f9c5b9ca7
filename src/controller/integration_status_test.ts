/**
 * The QuayIntegration status follows what Quay made of its token at once: a token a namespace pass
 * saw rejected turns `CredentialsValid` False with reason `TokenInvalid` without waiting for the
 * next check, and a pass Quay answered again turns it True — neither costs a call of its own.
 */
import assert from "node:assert/strict";
import type { KubeClient } from "../kube/client.ts";
import { silentLogger } from "../log.ts";
import { FixtureCaches, integrationObject, keyOf } from "./fixtures.ts";
import { type HttpTransport, TransportError } from "../http/transport.ts";
import { IntegrationRegistry } from "./integration_registry.ts";
import { type Condition, type CredentialsCheck, reconcileIntegration } from "./integration_status.ts";

function statusWriter() {
  const written: { conditions: Condition[] }[] = [];
  const kube = {
    patch: (_type: unknown, _name: string, body: { status: { conditions: Condition[] } }) => {
      written.push(body.status);
      return Promise.resolve({});
    },
  } as unknown as KubeClient;
  return { kube, written };
}

function condition(status: { conditions: Condition[] } | undefined, type: string) {
  const c = status?.conditions.find((c) => c.type === type);
  return c && { status: c.status, reason: c.reason };
}

Deno.test("integration status: a rejected token is CredentialsValid False at once, and recovers when Quay answers", async () => {
  const caches = new FixtureCaches().integration("quay");
  const key = keyOf("quay");
  const { kube, written } = statusWriter();
  const checks = new Map<string, CredentialsCheck>();
  let now = 1_000_000;
  const ctx = {
    kube,
    integrations: caches.registry,
    outcomes: new Map(),
    checks,
    events: { emit() {} },
    logger: silentLogger,
    resyncMs: 600_000,
    now: () => now,
  };
  // A namespace pass had Quay answer with this token: the status needs no call to say it is valid.
  caches.registry.acceptToken(key, now);
  await reconcileIntegration(ctx, key);
  assert.deepEqual(condition(written.at(-1), "CredentialsValid"), {
    status: "True",
    reason: "TokenAccepted",
  });

  // Quay rejects it in a later namespace pass.
  now += 1_000;
  caches.registry.rejectToken(key, "Quay answered 401 for GET /api/v1/organization/{org}");
  const action = await reconcileIntegration(ctx, key);
  assert.deepEqual(condition(written.at(-1), "CredentialsValid"), {
    status: "False",
    reason: "TokenInvalid",
  });
  assert.deepEqual(condition(written.at(-1), "Ready"), { status: "False", reason: "CredentialsInvalid" });
  assert.deepEqual(action, { requeueAfterMs: 60_000 }, "checked again within a minute, not at the resync");

  // The Secret gets a new token: usable again, and the next pass Quay answers proves it.
  caches.registry.setCredentials(key, { state: "ok", token: "n3w" });
  now += 1_000;
  caches.registry.acceptToken(key, now);
  await reconcileIntegration(ctx, key);
  assert.deepEqual(condition(written.at(-1), "CredentialsValid"), {
    status: "True",
    reason: "TokenAccepted",
  });
  caches.close();
});

/** A Quay transport that answers, refuses, or fails with a status, and counts what was asked. */
function scriptedTransport() {
  const state = { mode: "up" as "up" | "refuse" | number, calls: [] as string[] };
  const transport: HttpTransport = {
    send(request) {
      state.calls.push(`${request.method} ${new URL(request.url).pathname}`);
      if (state.mode === "refuse") return Promise.reject(new TransportError("Connection refused"));
      const status = state.mode === "up" ? 200 : state.mode;
      const body = status === 200 ? (request.method === "GET" ? '{"username":"admin"}' : "{}") : "{}";
      return Promise.resolve({ status, headers: new Headers(), text: body });
    },
    close() {},
  };
  return { state, transport };
}

Deno.test("integration status: QuayReachable follows the Quay calls made, and a probe brings it back without traffic", async () => {
  let now = 1_000_000;
  const { state, transport } = scriptedTransport();
  const flips: string[] = [];
  const registry = new IntegrationRegistry({
    quay: { transport, maxAttempts: 1 },
    now: () => now,
    onReachability: (key) => flips.push(key),
  });
  const key = keyOf("quay");
  registry.set(key, integrationObject("quay"));
  registry.setCredentials(key, { state: "ok", token: "t0k3n" });
  const { kube, written } = statusWriter();
  const ctx = {
    kube,
    integrations: registry,
    outcomes: new Map(),
    checks: new Map<string, CredentialsCheck>(),
    events: { emit() {} },
    logger: silentLogger,
    resyncMs: 600_000,
    now: () => now,
  };
  assert.deepEqual(await reconcileIntegration(ctx, key), { requeueAfterMs: 600_000 });
  assert.deepEqual(condition(written.at(-1), "QuayReachable"), { status: "True", reason: "Reachable" });

  // A namespace pass meets a 503: reachability flips at once, and the status says so on its next
  // pass without a call of its own (the failure is fresh evidence).
  state.mode = 503;
  const client = registry.client(key);
  assert.ok(client);
  await assert.rejects(client.createRepository("openshift_team", "app", ""));
  assert.deepEqual(flips, [key, key], "told when it turned reachable, and when it turned unreachable");
  now += 500;
  const callsBefore = state.calls.length;
  const action = await reconcileIntegration(ctx, key);
  assert.equal(state.calls.length, callsBefore, "no probe right after a failed call");
  assert.deepEqual(condition(written.at(-1), "QuayReachable"), {
    status: "False",
    reason: "QuayServerError",
  });
  assert.deepEqual(condition(written.at(-1), "Ready"), { status: "False", reason: "QuayUnreachable" });
  assert.deepEqual(action, { requeueAfterMs: 10_000 }, "probed again within seconds, not at the resync");

  // Refused: still unreachable; the reason says there was no answer.
  state.mode = "refuse";
  await assert.rejects(client.listRepositories("openshift_team"));
  assert.equal(registry.reachability(key)?.reason, "QuayUnreachable");
  assert.equal(flips.length, 2, "no flip while it stays unreachable");

  // Quay is back and nothing else calls it: the probe finds it.
  state.mode = "up";
  now += 10_000;
  await reconcileIntegration(ctx, key);
  assert.equal(state.calls.at(-1), "GET /api/v1/user/", "the probe");
  assert.deepEqual(condition(written.at(-1), "QuayReachable"), { status: "True", reason: "Reachable" });
  assert.deepEqual(condition(written.at(-1), "Ready"), { status: "True", reason: "Ready" });
  assert.equal(flips.length, 3);
  registry.close();
});
