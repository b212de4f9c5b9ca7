/**
 * The rotation decision alone: due times spread by the namespace's name, a backlog spread by slot,
 * requests answered once, and nothing rotated whose Secret is not in step with Quay.
 */
import assert from "node:assert/strict";
import { ROTATED_AT_ANNOTATION, ROTATION_HANDLED_ANNOTATION } from "../names.ts";
import {
  planRotation,
  type RotationCandidate,
  rotationDueAt,
  type RotationFacts,
  rotationTimestamp,
} from "./rotation_plan.ts";
import type { SecretView } from "./views.ts";

const HOUR = 3_600_000;
const INTERVAL = 720 * HOUR;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function candidate(rotatedAt: number | undefined, handled?: string, inSync = true): RotationCandidate {
  const annotations: Record<string, string> = {};
  if (rotatedAt !== undefined) annotations[ROTATED_AT_ANNOTATION] = rotationTimestamp(rotatedAt);
  if (handled !== undefined) annotations[ROTATION_HANDLED_ANNOTATION] = handled;
  const secret: SecretView = {
    namespace: "ns",
    name: "builder-quay-openshift",
    resourceVersion: "1",
    type: "kubernetes.io/dockerconfigjson",
    dockerConfig: "e30=",
    labels: {},
    annotations,
  };
  return { robot: { shortName: "builder", fullName: "o+builder", role: "write" }, secret, inSync };
}

function facts(namespace: string, now: number, extra: Partial<RotationFacts> = {}): RotationFacts {
  return { namespace, requested: undefined, intervalMs: INTERVAL, resyncMs: 600_000, now, ...extra };
}

const NAMES = Array.from({ length: 10_000 }, (_, i) => `team-${i}`);

Deno.test("rotation: 10,000 namespaces stamped in the same second fall due over the last tenth, at most a few a minute", () => {
  const perMinute = new Map<number, number>();
  for (const name of NAMES) {
    const due = rotationDueAt(name, T0, INTERVAL);
    assert.ok(due >= T0 + 0.9 * INTERVAL && due < T0 + INTERVAL, name);
    assert.equal(due, rotationDueAt(name, T0, INTERVAL), "the same name is always due at the same point");
    const minute = Math.floor(due / 60_000);
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
  }
  const busiest = Math.max(...perMinute.values());
  // 72 h = 4,320 minutes for 10,000 namespaces: 2.3 a minute on average.
  assert.ok(busiest <= 12, `${busiest} namespaces fall due in the busiest minute`);
  assert.ok(perMinute.size > 3_000, `only ${perMinute.size} distinct minutes`);
});

Deno.test("rotation: due only once the token is past its namespace's point; then it rotates", () => {
  const due = rotationDueAt("team-1", T0, INTERVAL);
  const before = planRotation(facts("team-1", due - 1_000), [candidate(T0)]);
  assert.deepEqual(before.rotations, []);
  assert.ok(before.nextDueAt !== undefined && Math.abs(before.nextDueAt - due) < 1_000);
  const after = planRotation(facts("team-1", due + 1_000), [candidate(T0)]);
  assert.deepEqual(after.rotations.map((r) => r.reason), ["interval"]);
  // The next rotation counts from now, not from the old stamp.
  assert.ok((after.nextDueAt ?? 0) >= due + 0.9 * INTERVAL);
});

Deno.test("rotation: a backlog of 10,000 tokens older than the interval rotates in slots, not at once", () => {
  const old = T0 - 2 * INTERVAL;
  const now = T0;
  let rotating = 0;
  let latest = 0;
  for (const name of NAMES) {
    const plan = planRotation(facts(name, now), [candidate(old)]);
    if (plan.rotations.length > 0) rotating++;
    else latest = Math.max(latest, plan.nextDueAt ?? Infinity);
  }
  // The slot is 2 minutes of every 72 hours: about 5 of 10,000 at any moment.
  assert.ok(rotating <= 20, `${rotating} of 10,000 overdue namespaces rotate at the same moment`);
  assert.ok(latest <= now + 0.1 * INTERVAL, "every overdue namespace gets its slot within a tenth");
});

Deno.test("rotation: a request rotates once; the value answered, or no request, rotates nothing", () => {
  const now = T0 + HOUR;
  const request = (value: string | undefined, handled: string | undefined) =>
    planRotation(facts("ns", now, { requested: value, intervalMs: undefined }), [candidate(T0, handled)])
      .rotations.map((r) => r.reason);
  assert.deepEqual(request("1", undefined), ["requested"]);
  assert.deepEqual(request("2", "1"), ["requested"]);
  assert.deepEqual(request("1", "1"), []);
  assert.deepEqual(request(undefined, undefined), []);
});

Deno.test("rotation: a Secret not in step with Quay, or missing, or without a stamp, is never rotated", () => {
  const now = T0 + 2 * INTERVAL;
  assert.deepEqual(
    planRotation(facts("ns", now, { requested: "1" }), [candidate(T0, undefined, false)]).rotations,
    [],
  );
  assert.deepEqual(
    planRotation(facts("ns", now), [{ ...candidate(T0), secret: undefined }]).rotations,
    [],
  );
  assert.deepEqual(planRotation(facts("ns", now), [candidate(undefined)]), {
    rotations: [],
    nextDueAt: undefined,
  });
});
