/**
 * Steady state and start-up against the test world: drift made by hand in Quay is repaired from
 * Quay's audit log within a poll interval while the per-namespace resync is an hour away; an idle
 * operator makes one audit call per interval; a restart with synced namespaces reads no
 * organization from Quay. Calls are counted by the world's Quay.
 */
import assert from "node:assert/strict";
import { type Bridge, startBridge, synced, until } from "./harness.ts";
import { pushImage } from "../world/quay/registry_client.ts";

/** A poll interval far below the resyncs: any repair within the test comes from the audit log. */
const FLAGS = ["--audit-interval", "300ms", "--resync", "1h", "--audited-resync", "1h"];
const SAS = ["builder", "default", "deployer"] as const;

async function withBridge(fn: (b: Bridge) => Promise<void>, flags = FLAGS): Promise<void> {
  const bridge = await startBridge({ flags });
  try {
    await fn(bridge);
  } finally {
    await bridge.close();
  }
}

function quayReads(calls: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(calls).filter(([route]) =>
      route !== "GET /api/v1/superuser/logs" && route !== "GET /api/v1/superuser/aggregatelogs" &&
      route !== "GET /api/v1/user/"
    ),
  );
}

async function robotToken(b: Bridge, org: string, sa: string): Promise<string | undefined> {
  const reply = await b.quay.call("GET", `/api/v1/organization/${org}/robots/${sa}`);
  return reply.status === 200 ? reply.body.token : undefined;
}

async function secretAuth(b: Bridge, ns: string, sa: string): Promise<string> {
  const secret = await b.kube.ok("GET", `/api/v1/namespaces/${ns}/secrets/${sa}-quay-openshift`);
  const config = JSON.parse(atob(secret.data[".dockerconfigjson"]));
  return atob(config.auths[b.quayWorld.registryHost].auth);
}

Deno.test("a robot, repository, default permission or organization deleted by hand in Quay is repaired from the audit log, not by a resync", async () => {
  await withBridge(async (b) => {
    const ns = "drift-demo";
    const org = `openshift_${ns}`;
    await b.createProject(ns);
    await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
      apiVersion: "image.openshift.io/v1",
      kind: "ImageStream",
      metadata: { name: "app" },
    });
    await synced(b, ns);
    await until(
      "repository app",
      async () => (await b.quay.call("GET", `/api/v1/repository/${org}/app`)).status === 200,
    );

    // A robot deleted by hand: recreated, and its new token written into the Secret.
    const before = await robotToken(b, org, "builder");
    await b.quay.ok("DELETE", `/api/v1/organization/${org}/robots/builder`);
    const token = await until("robot builder recreated", () => robotToken(b, org, "builder"), 10_000);
    assert.notEqual(token, before);
    await until(
      "Secret holds the new token",
      async () => (await secretAuth(b, ns, "builder")) === `${org}+builder:${token}`,
    );

    // A repository deleted by hand: recreated.
    await b.quay.ok("DELETE", `/api/v1/repository/${org}/app`);
    await until(
      "repository app recreated",
      async () => (await b.quay.call("GET", `/api/v1/repository/${org}/app`)).status === 200,
      10_000,
    );

    // A default permission deleted by hand: recreated.
    const prototypes = await b.quay.ok("GET", `/api/v1/organization/${org}/prototypes`);
    const deployer = prototypes.prototypes.find((p: { delegate: { name: string } }) =>
      p.delegate.name === `${org}+deployer`
    );
    await b.quay.ok("DELETE", `/api/v1/organization/${org}/prototypes/${deployer.id}`);
    await until("default permission recreated", async () => {
      const now = await b.quay.ok("GET", `/api/v1/organization/${org}/prototypes`);
      return now.prototypes.some((p: { delegate: { name: string }; role: string }) =>
        p.delegate.name === `${org}+deployer` && p.role === "read"
      );
    }, 10_000);

    // The whole organization deleted by hand: recreated with its robots, and every Secret rewritten.
    await b.quay.ok("DELETE", `/api/v1/organization/${org}`);
    await until("organization recreated", async () => {
      return (await b.quay.call("GET", `/api/v1/organization/${org}`)).status === 200 &&
        (await b.quay.call("GET", `/api/v1/repository/${org}/app`)).status === 200;
    }, 10_000);
    for (const sa of SAS) {
      const t = await until(`robot ${sa}`, () => robotToken(b, org, sa));
      await until(
        `Secret of ${sa} rewritten`,
        async () => (await secretAuth(b, ns, sa)) === `${org}+${sa}:${t}`,
      );
    }
    assert.ok(
      b.logs.some((l) => l.msg === "quay audit log: re-reading organizations changed in Quay"),
      "the repair is logged",
    );
  });
});

Deno.test("idle, the operator makes one audit-log call per interval (the counts) and reads no organization", async () => {
  await withBridge(async (b) => {
    for (const ns of ["idle-a", "idle-b", "idle-c"]) await b.createProject(ns);
    for (const ns of ["idle-a", "idle-b", "idle-c"]) await synced(b, ns);
    await new Promise((r) => setTimeout(r, 500));
    b.quayWorld.resetCalls();
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const calls = b.quayWorld.calls();
    const seconds = (Date.now() - started) / 1000;
    const polls = calls["GET /api/v1/superuser/aggregatelogs"] ?? 0;
    assert.ok(polls >= 5 && polls <= Math.ceil(seconds / 0.3) + 1, `audit polls: ${polls} in ${seconds} s`);
    assert.equal(calls["GET /api/v1/superuser/logs"] ?? 0, 0, "no page of the log read");
    assert.deepEqual(quayReads(calls), {}, "no organization re-read while nothing changed");
  });
});

Deno.test("after a burst of new namespaces a poll is one call, not a page per 20 entries; drift by hand is still repaired", async () => {
  await withBridge(async (b) => {
    const names = Array.from({ length: 15 }, (_, i) => `burst-${i}`);
    // The burst runs while the audit log is polled: creations are logged, but not counted.
    for (const ns of names) await b.createProject(ns);
    for (const ns of names) await synced(b, ns);
    await new Promise((r) => setTimeout(r, 600));
    b.quayWorld.resetCalls();
    await new Promise((r) => setTimeout(r, 1_500));
    const idle = b.quayWorld.calls();
    const polls = idle["GET /api/v1/superuser/aggregatelogs"] ?? 0;
    assert.ok(polls >= 3, `polls: ${polls}`);
    assert.equal(
      idle["GET /api/v1/superuser/logs"] ?? 0,
      0,
      `calls after the burst: ${JSON.stringify(idle)}`,
    );
    // The log holds the burst's creations (about 8 a namespace) above the drift to come.
    const logged = await b.quay.ok("GET", "/api/v1/superuser/logs");
    assert.equal(logged.logs.length, 20);
    assert.ok(logged.next_page, "more than a page of entries");

    b.quayWorld.resetCalls();
    const org = "openshift_burst-7";
    await b.quay.ok("DELETE", `/api/v1/organization/${org}/robots/deployer`);
    await until("robot deployer recreated", () => robotToken(b, org, "deployer"), 10_000);
    const repair = b.quayWorld.calls();
    // The deletion is the newest entry: its page, and the counts once more before stopping.
    const pages = repair["GET /api/v1/superuser/logs"] ?? 0;
    assert.ok(pages >= 1 && pages <= 2, `pages read for the drift: ${JSON.stringify(repair)}`);
  });
});

Deno.test({
  name: "a push to a tracked tag made straight to Quay is imported from the audit log, notifications off",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const b = await startBridge({ openshift: true, flags: FLAGS });
    const ns = "pushed";
    const org = `openshift_${ns}`;
    try {
      await b.createProject(ns);
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
        metadata: { name: "app" },
        spec: { tags: [{ name: "v1" }] },
      });
      await synced(b, ns);
      await until(
        "repository app",
        async () => (await b.quay.call("GET", `/api/v1/repository/${org}/app`)).status === 200,
      );
      const robot = await b.quay.ok("GET", `/api/v1/organization/${org}/robots/builder`);
      const client = Deno.createHttpClient({ caCerts: [b.quayWorld.caPem] });
      const statusTag = async (tag: string) => {
        const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/app`);
        const tags = (is.status?.tags ?? []) as { tag: string; items?: { image: string }[] }[];
        return tags.find((t) => t.tag === tag)?.items?.[0]?.image;
      };
      try {
        const target = {
          registryUrl: b.quayWorld.url,
          client,
          repository: `${org}/app`,
          username: robot.name,
          password: robot.token,
        };
        // An untracked tag first, then the tracked one: only the tracked one is imported.
        await pushImage({ ...target, tag: "scratch" });
        const started = Date.now();
        const pushed = await pushImage({ ...target, tag: "v1" });
        await until("v1 imported", async () => (await statusTag("v1")) === pushed.digest, 10_000);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 10_000, `imported ${elapsed} ms after the push`);
        await new Promise((r) => setTimeout(r, 700));
        assert.equal(await statusTag("scratch"), undefined, "an untracked tag is not imported");
        assert.ok(
          b.logs.some((l) => l.msg === "image imported after push" && l.tag === `${ns}/app:v1`),
          "imported by the notification import path",
        );
        // No notification was involved: the integration has none, and Quay holds none.
        const notes = await b.quay.ok("GET", `/api/v1/repository/${org}/app/notification/`);
        assert.deepEqual(notes.notifications, []);
      } finally {
        client.close();
      }
    } finally {
      await b.close();
    }
  },
});

Deno.test("a restart with synced namespaces reads no organization from Quay: the cluster and the audit log stand for them", async () => {
  await withBridge(async (b) => {
    const names = Array.from({ length: 12 }, (_, i) => `restart-${i}`);
    await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/default/imagestreams`, {
      apiVersion: "image.openshift.io/v1",
      kind: "ImageStream",
      metadata: { name: "unrelated" },
    }).catch(() => undefined);
    for (const ns of names) await b.createProject(ns);
    await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/restart-0/imagestreams`, {
      apiVersion: "image.openshift.io/v1",
      kind: "ImageStream",
      metadata: { name: "web" },
    });
    for (const ns of names) await synced(b, ns);
    // Every namespace records what was synced before the restart.
    await until("synced annotations", async () => {
      for (const ns of names) {
        const got = await b.kube.ok("GET", `/api/v1/namespaces/${ns}`);
        if (!got.metadata.annotations?.["quay.redhat.com/quay-bridge-synced"]) return false;
      }
      return true;
    });
    await until(
      "repository web",
      async () => (await b.quay.call("GET", `/api/v1/repository/openshift_restart-0/web`)).status === 200,
    );
    assert.equal(await b.running?.stop(), 0);

    // While it is down: one robot deleted by hand — the audit log since the last run names it.
    await b.quay.ok("DELETE", `/api/v1/organization/openshift_restart-5/robots/default`);
    b.quayWorld.resetCalls();
    const started = performance.now();
    const running = await b.startOperator();
    await until("all namespaces Ready", () => {
      const outcomes = running.operator.outcomes;
      return names.every((ns) => outcomes.get(ns)?.state === "Ready");
    }, 10_000);
    const readyMs = performance.now() - started;
    const atReady = b.quayWorld.calls();
    await until(
      "robot default of restart-5 recreated",
      () => robotToken(b, "openshift_restart-5", "default"),
    );
    assert.ok(readyMs < 5_000, `ready after ${readyMs} ms`);
    // Only the drifted organization is read (lists, the robot and its default permission created);
    // every other namespace costs nothing.
    const reads = quayReads(atReady);
    const drifted = Object.values(reads).reduce((a, n) => a + n, 0);
    assert.ok(drifted <= 8, `calls for the drifted organization only: ${JSON.stringify(reads)}`);
    // N/100 + a constant: the token check and the drifted organization, besides the audit log's
    // pages (the catch-up reads what was logged since the last stored cursor, 20 entries a page,
    // then one call per interval).
    const polls = (atReady["GET /api/v1/superuser/logs"] ?? 0) +
      (atReady["GET /api/v1/superuser/aggregatelogs"] ?? 0);
    // The cursor is stored at most once a minute, so after a quick restart the catch-up reads what the
    // first run's provisioning logged (organization, robots, default permissions, repositories: at
    // most 8 entries a namespace), 20 entries a page.
    const catchUpPages = Math.ceil((names.length * 8) / 20);
    assert.ok(polls <= 3 + catchUpPages + 2 * Math.ceil(readyMs / 300), `audit polls: ${polls}`);
    const startup = Object.values(atReady).reduce((a, n) => a + n, 0) - polls;
    assert.ok(startup <= Math.ceil(names.length / 100) + 9, `start-up calls: ${JSON.stringify(atReady)}`);
  });
});

Deno.test("a token without super-user rights cannot read the audit log: the status and the log say so, and the plain resync repairs drift", async () => {
  const b = await startBridge({ start: false });
  try {
    const token = b.quayWorld.createToken({
      user: "developer",
      scopes: [
        "repo:read",
        "repo:write",
        "repo:admin",
        "repo:create",
        "user:read",
        "user:admin",
        "org:admin",
      ],
    });
    await b.kube.ok("PUT", "/api/v1/namespaces/quay-bridge/secrets/quay-integration", {
      metadata: { name: "quay-integration", namespace: "quay-bridge" },
      stringData: { token },
    });
    await b.startOperator(["--audit-interval", "300ms", "--resync", "1s", "--audited-resync", "1h"]);
    await b.createProject("plain");
    await synced(b, "plain");
    const condition = await until("AuditLogFollowed False", async () => {
      const cr = await b.kube.ok("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay");
      const c = (cr.status?.conditions ?? []).find((c: { type: string }) => c.type === "AuditLogFollowed");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(condition.reason, "AuditLogUnavailable");
    assert.ok(b.logs.some((l) => String(l.msg).startsWith("quay audit log unavailable")));
    // Drift is still repaired, by the plain resync (1 s here).
    await b.quay.ok("DELETE", "/api/v1/organization/openshift_plain/robots/deployer");
    await until("robot recreated by the resync", () => robotToken(b, "openshift_plain", "deployer"), 10_000);
  } finally {
    await b.close();
  }
});
