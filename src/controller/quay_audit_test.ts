import assert from "node:assert/strict";
import type { QuayLogCount, QuayLogEntry, QuayLogPage } from "../quay/client.ts";
import type { CountSnapshot } from "./audit_counts.ts";
import { QuayApiError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import {
  type AuditCursor,
  organizationOf,
  pollAuditLog,
  QuayAudit,
  quayDay,
  spreadRereads,
} from "./quay_audit.ts";

function fingerprintOf(e: QuayLogEntry | undefined): string {
  assert.ok(e);
  return `${e.kind}|${e.datetime}|${e.namespace?.name ?? ""}|${JSON.stringify(e.metadata ?? {})}`;
}

const T0 = Date.UTC(2026, 11, 2, 6, 8, 40);

function entry(kind: string, seconds: number, org: string, deleted = false): QuayLogEntry {
  const datetime = new Date(T0 + seconds * 1000).toUTCString().replace("GMT", "-0000");
  return deleted
    ? { kind, datetime, metadata: { namespace: org } }
    : { kind, datetime, metadata: { robot: "builder" }, namespace: { kind: "org", name: org } };
}

/** A log listed newest first, `size` a page, counting the calls. */
function port(entries: QuayLogEntry[], size = 2) {
  const asked: { startDay: string; endDay: string; nextPage?: string | undefined }[] = [];
  return {
    asked,
    listSuperuserLogs(options: { startDay: string; endDay: string; nextPage?: string | undefined }) {
      asked.push(options);
      const offset = Number(options.nextPage ?? 0);
      const page: QuayLogPage = {
        logs: entries.slice(offset, offset + size),
        nextPage: offset + size < entries.length ? String(offset + size) : undefined,
        unavailable: false,
      };
      return Promise.resolve(page);
    },
  };
}

Deno.test("the first poll reads one page and sets the cursor; nothing is re-read", async () => {
  const p = port([entry("create_robot", 3, "a"), entry("delete_robot", 2, "b"), entry("org_create", 1, "b")]);
  const scan = await pollAuditLog(p, undefined, { now: T0 + 10_000 });
  assert.equal(p.asked.length, 1);
  assert.deepEqual([...scan.organizations], []);
  assert.equal(scan.cursor.at, T0 + 3000);
  assert.equal(p.asked[0]?.startDay, quayDay(T0 - 86_400_000));
});

Deno.test("a poll pages back to the cursor and names the organizations of drift kinds only", async () => {
  const old = [entry("create_robot", 1, "x"), entry("org_create", 0, "x")];
  const p0 = port(old);
  const first = await pollAuditLog(p0, undefined, { now: T0 + 5_000 });
  const fresh = [
    entry("create_repo", 9, "c", true),
    entry("org_delete", 8, "gone", true),
    entry("delete_repo", 7, "r"),
    entry("delete_prototype_permission", 6, "p"),
    entry("create_robot", 5, "new"),
  ];
  const p = port([...fresh, ...old]);
  const scan = await pollAuditLog(p, first.cursor, { now: T0 + 20_000 });
  assert.deepEqual([...scan.organizations].sort(), ["gone", "p", "r"]);
  assert.equal(scan.complete, true);
  assert.equal(p.asked.length, 3, "pages up to the first entry already read");
  // Nothing new: one call, nothing named.
  const idle = port([...fresh, ...old]);
  const again = await pollAuditLog(idle, scan.cursor, { now: T0 + 30_000 });
  assert.equal(idle.asked.length, 1);
  assert.deepEqual([...again.organizations], []);
});

Deno.test("entries of the cursor's own second are not read twice; a new one of that second is", async () => {
  const a = entry("delete_robot", 4, "a");
  const first = await pollAuditLog(port([a]), undefined, { now: T0 + 5_000 });
  const b = { ...entry("delete_robot", 4, "b") };
  const scan = await pollAuditLog(port([b, a]), first.cursor, { now: T0 + 6_000 });
  assert.deepEqual([...scan.organizations], ["b"]);
  assert.deepEqual([...scan.cursor.seen].length, 2);
});

Deno.test("a page budget that runs out before the cursor is a gap", async () => {
  const entries = Array.from({ length: 10 }, (_, i) => entry("delete_repo", 100 - i, `o${i}`));
  const scan = await pollAuditLog(port(entries), { at: T0, seen: [] }, { now: T0 + 200_000, maxPages: 2 });
  assert.equal(scan.complete, false);
});

Deno.test("a deleted organization is named by its metadata", () => {
  assert.equal(organizationOf(entry("org_delete", 1, "gone", true)), "gone");
  assert.equal(organizationOf({ kind: "delete_robot", datetime: "" }), undefined);
  // Quay renames an organization it deletes until it is collected; the metadata keeps the name.
  assert.equal(
    organizationOf({
      kind: "org_delete",
      datetime: "",
      metadata: { namespace: "team" },
      namespace: { kind: "org", name: "a9e04c3b-0a70-4f37-af61-517d93245029" },
    }),
    "team",
  );
  assert.equal(
    organizationOf({ kind: "org_change_name", datetime: "", metadata: { old_name: "old" } }),
    "old",
  );
});

function follower(options: {
  logs: QuayLogEntry[];
  stored?: Map<string, AuditCursor>;
  fail?: QuayApiError;
  pending?: boolean;
  now: { t: number };
}) {
  const saved: Map<string, AuditCursor>[] = [];
  const drift: (ReadonlySet<string> | "all")[] = [];
  const p = port(options.logs, 20);
  const client = options.fail ? { listSuperuserLogs: () => Promise.reject(options.fail) } : p;
  const audit = new QuayAudit({
    integrations: () => [{ key: "k", client }],
    onDrift: (_key, organizations) => drift.push(organizations),
    store: {
      load: () => Promise.resolve(new Map(options.stored ?? [])),
      save: (cursors) => {
        saved.push(new Map(cursors));
        return Promise.resolve();
      },
    },
    pending: () => options.pending ?? false,
    logger: silentLogger,
    intervalMs: 1_000,
    trustMs: 3_600_000,
    now: () => options.now.t,
  });
  return { audit, saved, drift, asked: p.asked };
}

Deno.test("a stored cursor is trusted once the log since it is read; none, or an old one, is not", async () => {
  const now = { t: T0 + 60_000 };
  const logs = [entry("delete_robot", 30, "team"), entry("create_robot", 1, "x")];
  const fresh = follower({ logs, stored: new Map([["k", { at: T0 + 10_000, seen: [] }]]), now });
  await fresh.audit.poll();
  assert.deepEqual(fresh.audit.state("k"), {
    kind: "following",
    trusted: true,
    cursor: { at: T0 + 30_000, seen: [fingerprintOf(logs[0])], checkedAt: now.t },
  });
  assert.deepEqual(fresh.drift.map((d) => d === "all" ? d : [...d]), [["team"]]);
  assert.equal(fresh.saved.at(-1)?.get("k")?.at, T0 + 30_000, "the new cursor is stored");

  const none = follower({ logs, now });
  await none.audit.poll();
  const first = none.audit.state("k");
  assert.equal(first.kind === "following" && first.trusted, false);

  const old = follower({ logs, stored: new Map([["k", { at: T0 - 7_200_000, seen: [] }]]), now });
  await old.audit.poll();
  const state = old.audit.state("k");
  assert.equal(state.kind === "following" && state.trusted, false);
});

Deno.test("403 makes the log unavailable (the plain resync applies); an outage keeps trying", async () => {
  const now = { t: T0 };
  const denied = follower({
    logs: [],
    fail: new QuayApiError("Quay answered 403", { status: 403, route: "GET /api/v1/superuser/logs" }),
    now,
  });
  await denied.audit.poll();
  assert.equal(denied.audit.state("k").kind, "unavailable");
  const down = follower({
    logs: [],
    fail: new QuayApiError("Cannot reach Quay", { status: 0, route: "GET /api/v1/superuser/logs" }),
    now,
  });
  await down.audit.poll();
  assert.equal(down.audit.state("k").kind, "pending");
});

Deno.test("a cursor is not stored while the drift it covers is unrepaired", async () => {
  const now = { t: T0 + 60_000 };
  const f = follower({
    logs: [entry("delete_repo", 30, "team")],
    stored: new Map([["k", { at: T0, seen: [] }]]),
    pending: true,
    now,
  });
  await f.audit.poll();
  assert.equal(f.saved.at(-1)?.get("k")?.at, T0, "the old cursor is kept");
});

Deno.test("after a gap, the re-reads of an integration's mirrors are spread over the window, not all due at once", () => {
  const now = Date.UTC(2026, 11, 2);
  const mirrors = new Map<string, { observedAt: number }>();
  for (let i = 0; i < 1_000; i++) mirrors.set(`v1/quay|openshift_ns-${i}`, { observedAt: now - 1_000 });
  mirrors.set("v1/other|openshift_x", { observedAt: now - 1_000 });
  let seed = 1;
  const random = () => ((seed = (seed * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
  const window = 600_000;
  const resync = 43_200_000;
  const due = spreadRereads(mirrors, "v1/quay|", { now, windowMs: window, resyncMs: resync, random });
  assert.equal(due.length, 1_000, "every mirror of the integration, no other");
  assert.equal(mirrors.get("v1/other|openshift_x")?.observedAt, now - 1_000);
  // Each mirror is exactly resync old when its namespace runs again: read then, not before.
  for (const { mirror, delayMs } of due) {
    assert.ok(delayMs >= 0 && delayMs < window);
    assert.equal(mirrors.get(mirror)?.observedAt, now + delayMs - resync);
  }
  // Spread: no minute of the ten holds more than a fifth of the re-reads.
  const perMinute = new Array(10).fill(0);
  for (const { delayMs } of due) perMinute[Math.floor(delayMs / 60_000)]++;
  assert.ok(Math.max(...perMinute) <= 200, `re-reads per minute: ${perMinute.join(", ")}`);
  // A mirror already older than that keeps its age (it is due at once anyway).
  const stale = new Map([["v1/quay|old", { observedAt: 0 }]]);
  spreadRereads(stale, "v1/quay|", { now, windowMs: window, resyncMs: resync, random });
  assert.equal(stale.get("v1/quay|old")?.observedAt, 0);
});

/** A log that also answers Quay's counts (per kind and UTC day), counting both kinds of call. */
function countingPort(options: { size?: number; onCounts?: (n: number) => void } = {}) {
  const entries: QuayLogEntry[] = []; // newest first
  const calls = { pages: 0, counts: 0 };
  const size = options.size ?? 20;
  return {
    entries,
    calls,
    log(e: QuayLogEntry) {
      entries.unshift(e);
    },
    listSuperuserLogs(o: { startDay: string; endDay: string; nextPage?: string | undefined }) {
      calls.pages++;
      const offset = Number(o.nextPage ?? 0);
      return Promise.resolve({
        logs: entries.slice(offset, offset + size),
        nextPage: offset + size < entries.length ? String(offset + size) : undefined,
        unavailable: false,
      });
    },
    aggregateSuperuserLogs(_o: { startDay: string; endDay: string }) {
      calls.counts++;
      const by = new Map<string, QuayLogCount>();
      for (const e of entries) {
        const day = new Date(Math.floor(Date.parse(e.datetime) / 86_400_000) * 86_400_000);
        const datetime = day.toUTCString().replace("GMT", "-0000");
        const key = `${e.kind}|${datetime}`;
        const known = by.get(key);
        by.set(key, { kind: e.kind, datetime, count: (known?.count ?? 0) + 1 });
      }
      const answer = { counts: [...by.values()], unavailable: false };
      options.onCounts?.(calls.counts);
      return Promise.resolve(answer);
    },
  };
}

function push(seconds: number, org: string, repo: string, tag: string): QuayLogEntry {
  const datetime = new Date(T0 + seconds * 1000).toUTCString().replace("GMT", "-0000");
  return {
    kind: "push_repo",
    datetime,
    metadata: { repo, namespace: org, tag },
    namespace: { kind: "org", name: org },
  };
}

Deno.test("with counts: nothing counted logged costs one call, however many other entries; drift costs a few", async () => {
  const p = countingPort();
  p.log(entry("delete_robot", 1, "old"));
  const first = await pollAuditLog(p, undefined, { now: T0 + 5_000 });
  assert.deepEqual([p.calls.counts, p.calls.pages], [1, 1]);
  // A burst: 2,000 creations (the operator's own) and as many pulls.
  for (let i = 0; i < 2_000; i++) p.log(entry(i % 2 ? "create_robot" : "pull_repo", 10 + i / 100, `o${i}`));
  p.calls.counts = p.calls.pages = 0;
  const idle = await pollAuditLog(p, first.cursor, { now: T0 + 40_000 });
  assert.deepEqual([p.calls.counts, p.calls.pages], [1, 0], "one call, no page");
  assert.equal(idle.complete, true);
  assert.equal(idle.calls, 1);
  // One robot deleted by hand on top of it: its page, and the counts again to be sure.
  p.log(entry("delete_robot", 40, "team"));
  p.calls.counts = p.calls.pages = 0;
  const drift = await pollAuditLog(p, idle.cursor, { now: T0 + 45_000 });
  assert.deepEqual([...drift.organizations], ["team"]);
  assert.deepEqual([p.calls.counts, p.calls.pages], [2, 1]);
  // Without counts the same drift pages through the whole burst to the cursor.
  p.calls.counts = p.calls.pages = 0;
  const plain = await pollAuditLog(p, idle.cursor, { now: T0 + 50_000, counts: false });
  assert.deepEqual([...plain.organizations], ["team"]);
  assert.ok(p.calls.pages > 100, `pages without counts: ${p.calls.pages}`);
});

Deno.test("with counts: an entry logged between the counts and the pages does not hide an older one", async () => {
  let inject: QuayLogEntry | undefined;
  const p = countingPort({
    size: 2,
    onCounts: () => {
      // Logged right after Quay counted (the first call of the poll only).
      if (inject) p.log(inject);
      inject = undefined;
    },
  });
  p.log(entry("create_robot", 1, "x"));
  const first = await pollAuditLog(p, undefined, { now: T0 + 5_000 });
  p.log(entry("delete_repo", 10, "older"));
  for (let i = 0; i < 5; i++) p.log(entry("create_robot", 11 + i, `c${i}`));
  inject = entry("delete_robot", 20, "newer");
  const scan = await pollAuditLog(p, first.cursor, { now: T0 + 30_000 });
  assert.deepEqual([...scan.organizations].sort(), ["newer", "older"], "both found");
  assert.equal(
    scan.cursor.counts?.surplus,
    1,
    "the newer one is carried: counted next time, not wanted again",
  );
  // Next poll: the counts grew by the one already read; nothing new is wanted, one call.
  p.calls.counts = p.calls.pages = 0;
  const next = await pollAuditLog(p, scan.cursor, { now: T0 + 35_000 });
  assert.deepEqual([p.calls.counts, p.calls.pages], [1, 0]);
  assert.deepEqual([...next.organizations], []);
});

Deno.test("with counts: pushes are named once per tag; shrunken counts page to the cursor", async () => {
  const p = countingPort();
  p.log(entry("create_robot", 1, "x"));
  const first = await pollAuditLog(p, undefined, { now: T0 + 5_000 });
  p.log(push(10, "openshift_team", "app", "latest"));
  p.log(entry("pull_repo", 11, "openshift_team"));
  p.log(push(12, "openshift_team", "app", "latest"));
  p.log(push(13, "openshift_team", "web", "v1"));
  const scan = await pollAuditLog(p, first.cursor, { now: T0 + 20_000 });
  assert.deepEqual(scan.pushes, [
    { organization: "openshift_team", repository: "web", tag: "v1" },
    { organization: "openshift_team", repository: "app", tag: "latest" },
  ]);
  assert.deepEqual([...scan.organizations], [], "a push is no drift");
  // Quay's counts went down (logs rotated): nothing is certain, the poll reads to the cursor.
  const shrunk = { ...scan.cursor, counts: { ...(scan.cursor.counts as CountSnapshot), surplus: 0 } };
  const raised: CountSnapshot = {
    ...shrunk.counts,
    counts: Object.fromEntries(Object.entries(shrunk.counts.counts).map(([key, n]) => [key, n + 5])),
  };
  p.calls.counts = p.calls.pages = 0;
  const again = await pollAuditLog(p, { ...shrunk, counts: raised }, { now: T0 + 25_000 });
  assert.equal(again.complete, true);
  assert.deepEqual([p.calls.counts, p.calls.pages], [1, 1], "to the cursor (one page here)");
});

Deno.test("with counts refused (403) or search unavailable: the poll pages as without them, and says why", async () => {
  const p = countingPort();
  p.log(entry("delete_robot", 1, "x"));
  const refused = {
    listSuperuserLogs: p.listSuperuserLogs.bind(p),
    aggregateSuperuserLogs: () =>
      Promise.reject(
        new QuayApiError("Quay answered 403", { status: 403, route: "GET /api/v1/superuser/aggregatelogs" }),
      ),
  };
  const first = await pollAuditLog(refused, undefined, { now: T0 + 5_000 });
  assert.match(first.countsUnavailable ?? "", /403/);
  p.log(entry("delete_robot", 10, "team"));
  const scan = await pollAuditLog(refused, first.cursor, { now: T0 + 20_000 });
  assert.deepEqual([...scan.organizations], ["team"]);
  assert.equal(scan.cursor.counts, undefined);
  const unavailable = {
    listSuperuserLogs: p.listSuperuserLogs.bind(p),
    aggregateSuperuserLogs: () => Promise.resolve({ counts: [], unavailable: true }),
  };
  const plain = await pollAuditLog(unavailable, scan.cursor, { now: T0 + 25_000 });
  assert.equal(plain.countsUnavailable, "Quay's log search is not configured");
  // An outage is not a refusal: the poll fails and is tried again next round.
  const down = {
    listSuperuserLogs: p.listSuperuserLogs.bind(p),
    aggregateSuperuserLogs: () =>
      Promise.reject(
        new QuayApiError("Cannot reach Quay", { status: 0, route: "GET /api/v1/superuser/aggregatelogs" }),
      ),
  };
  await assert.rejects(pollAuditLog(down, scan.cursor, { now: T0 + 30_000 }));
});

Deno.test("a restart with a stored snapshot reads only what is new since it; an old one is not trusted", async () => {
  const p = countingPort();
  p.log(entry("create_robot", 1, "x"));
  const first = await pollAuditLog(p, undefined, { now: T0 + 5_000 });
  // Stored with the cursor, as the Secret keeps it, then the operator is away for two hours.
  const stored = JSON.parse(JSON.stringify(first.cursor)) as AuditCursor;
  for (let i = 0; i < 200; i++) p.log(entry("pull_repo", 100 + i, "o"));
  p.log(entry("delete_repo", 7_000, "team"));
  const now = { t: T0 + 7_200_000 };
  const saved: Map<string, AuditCursor>[] = [];
  const drift: (ReadonlySet<string> | "all")[] = [];
  const audit = new QuayAudit({
    integrations: () => [{ key: "k", client: p }],
    onDrift: (_key, organizations) => drift.push(organizations),
    store: {
      load: () => Promise.resolve(new Map([["k", stored]])),
      save: (cursors) => {
        saved.push(new Map(cursors));
        return Promise.resolve();
      },
    },
    logger: silentLogger,
    intervalMs: 5_000,
    trustMs: 43_200_000,
    now: () => now.t,
  });
  p.calls.counts = p.calls.pages = 0;
  await audit.poll();
  assert.deepEqual(drift.map((d) => d === "all" ? d : [...d]), [["team"]]);
  assert.deepEqual([p.calls.counts, p.calls.pages], [2, 1], "past 200 pulls in one page");
  const state = audit.state("k");
  assert.equal(state.kind === "following" && state.trusted, true);
  assert.ok(saved.at(-1)?.get("k")?.counts, "the snapshot is stored with the cursor");
  // Idle for longer than the trust period: the cursor's `at` stays, `checkedAt` keeps it trusted.
  const idle = { t: T0 + 50_000_000 };
  const later = new QuayAudit({
    integrations: () => [{ key: "k", client: p }],
    onDrift: () => {},
    store: { load: () => Promise.resolve(new Map(saved.at(-1))), save: () => Promise.resolve() },
    logger: silentLogger,
    intervalMs: 5_000,
    trustMs: 43_200_000,
    now: () => idle.t,
  });
  await later.poll();
  const s2 = later.state("k");
  assert.equal(s2.kind === "following" && s2.trusted, true, "checked 12 h ago minus a bit: trusted");
  const stale = new QuayAudit({
    integrations: () => [{ key: "k", client: p }],
    onDrift: () => {},
    store: { load: () => Promise.resolve(new Map(saved.at(-1))), save: () => Promise.resolve() },
    logger: silentLogger,
    intervalMs: 5_000,
    trustMs: 43_200_000,
    now: () => T0 + 7_200_000 + 43_300_000,
  });
  await stale.poll();
  const s3 = stale.state("k");
  assert.equal(s3.kind === "following" && s3.trusted, false, "checked more than 12 h ago: not trusted");
});
