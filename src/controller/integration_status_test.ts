/**
 * The QuayIntegration status follows what Quay made of its token at once: a token a namespace pass
 * saw rejected turns `CredentialsValid` False with reason `TokenInvalid` without waiting for the
 * next check, and a pass Quay answered again turns it True — neither costs a call of its own.
 */
import assert from "node:assert/strict";
import type { KubeClient } from "../kube/client.ts";
import { silentLogger } from "../log.ts";
import { FixtureCaches, keyOf } from "./fixtures.ts";
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
