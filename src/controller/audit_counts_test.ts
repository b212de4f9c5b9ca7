import assert from "node:assert/strict";
import {
  countRange,
  type CountSnapshot,
  DAY_MS,
  dayOf,
  foundEnough,
  growth,
  keepSnapshot,
  parseSnapshot,
  surplusAfter,
  tally,
} from "./audit_counts.ts";

const D = Date.UTC(2026, 11, 2); // a Wednesday, midnight UTC
const KINDS = new Set(["delete_robot", "push_repo"]);

function snap(from: number, to: number, counts: Record<string, number>, surplus = 0): CountSnapshot {
  return { from, to, counts, surplus };
}

const k = (kind: string, day: number) => `${kind}|${day}`;

Deno.test("countRange: from the previous snapshot's first day to tomorrow, within Quay's month", () => {
  const rows: [
    string,
    CountSnapshot | undefined,
    number,
    { from: number; to: number; comparable: boolean },
  ][] = [
    ["no snapshot: yesterday to tomorrow", undefined, D + 3_600_000, {
      from: D - DAY_MS,
      to: D + DAY_MS,
      comparable: false,
    }],
    ["same day", snap(D - DAY_MS, D + DAY_MS, {}), D + 7_200_000, {
      from: D - DAY_MS,
      to: D + DAY_MS,
      comparable: true,
    }],
    [
      "day rollover: the old first day stays in range",
      snap(D - DAY_MS, D + DAY_MS, {}),
      D + DAY_MS + 60_000,
      {
        from: D - DAY_MS,
        to: D + 2 * DAY_MS,
        comparable: true,
      },
    ],
    ["a restart ten days later", snap(D - DAY_MS, D + DAY_MS, {}), D + 10 * DAY_MS, {
      from: D - DAY_MS,
      to: D + 11 * DAY_MS,
      comparable: true,
    }],
    ["beyond a month: not comparable", snap(D - DAY_MS, D + DAY_MS, {}), D + 29 * DAY_MS, {
      from: D + 28 * DAY_MS,
      to: D + 30 * DAY_MS,
      comparable: false,
    }],
    [
      "a snapshot from the future (operator clock set back): not comparable",
      snap(D + 5 * DAY_MS, D + 7 * DAY_MS, {}),
      D,
      {
        from: D - DAY_MS,
        to: D + DAY_MS,
        comparable: false,
      },
    ],
  ];
  for (const [name, previous, now, want] of rows) assert.deepEqual(countRange(previous, now), want, name);
  // The longest comparable range is what Quay accepts: end day + 1 - start <= 31 days.
  const longest = countRange(snap(D - DAY_MS, D + DAY_MS, {}), D + 28 * DAY_MS);
  assert.equal(longest.comparable, true);
  assert.ok(longest.to + DAY_MS - longest.from <= 31 * DAY_MS);
});

Deno.test("dayOf: Quay prints midnight of the UTC day in its own zone; the nearest midnight is the day", () => {
  assert.equal(dayOf("Wed, 02 Dec 2026 00:00:00 -0000"), D);
  assert.equal(dayOf("Tue, 01 Dec 2026 22:00:00 -0000"), D, "a Quay two hours east of UTC");
  assert.equal(dayOf("Wed, 02 Dec 2026 05:00:00 -0000"), D, "a Quay five hours west of UTC");
  assert.equal(dayOf("not a date"), undefined);
});

Deno.test("tally keeps the counted kinds, per kind and day", () => {
  const got = tally(
    [
      { kind: "delete_robot", count: 2, datetime: "Wed, 02 Dec 2026 00:00:00 -0000" },
      { kind: "create_robot", count: 900, datetime: "Wed, 02 Dec 2026 00:00:00 -0000" },
      { kind: "pull_repo", count: 50_000, datetime: "Wed, 02 Dec 2026 00:00:00 -0000" },
      { kind: "push_repo", count: 1, datetime: "Tue, 01 Dec 2026 00:00:00 -0000" },
      { kind: "push_repo", count: 3, datetime: "garbage" },
    ],
    { from: D - DAY_MS, to: D + DAY_MS },
    KINDS,
  );
  assert.deepEqual(
    got,
    snap(D - DAY_MS, D + DAY_MS, { [k("delete_robot", D)]: 2, [k("push_repo", D - DAY_MS)]: 1 }),
  );
});

Deno.test("growth: how many counted entries are new, Infinity whenever that is not certain", () => {
  const base = snap(D - DAY_MS, D + DAY_MS, { [k("delete_robot", D)]: 2, [k("push_repo", D)]: 5 });
  const rows: [string, CountSnapshot | undefined, CountSnapshot, number][] = [
    ["no previous snapshot", undefined, base, Infinity],
    ["nothing grew", base, snap(D - DAY_MS, D + DAY_MS, { ...base.counts }), 0],
    [
      "one push and two deletions",
      base,
      snap(D - DAY_MS, D + DAY_MS, {
        [k("delete_robot", D)]: 4,
        [k("push_repo", D)]: 6,
      }),
      3,
    ],
    ["a kind new today", base, snap(D - DAY_MS, D + DAY_MS, { ...base.counts, [k("delete_repo", D)]: 1 }), 1],
    [
      "day rollover: tomorrow's first entries",
      base,
      snap(D - DAY_MS, D + 2 * DAY_MS, {
        ...base.counts,
        [k("push_repo", D + DAY_MS)]: 2,
      }),
      2,
    ],
    [
      "a day the previous range did not cover counts from 0",
      base,
      snap(D - DAY_MS, D + 3 * DAY_MS, {
        ...base.counts,
        [k("push_repo", D + 2 * DAY_MS)]: 7,
      }),
      7,
    ],
    [
      "a count that shrank",
      base,
      snap(D - DAY_MS, D + DAY_MS, { [k("delete_robot", D)]: 1, [k("push_repo", D)]: 9 }),
      Infinity,
    ],
    ["a count that vanished", base, snap(D - DAY_MS, D + DAY_MS, { [k("push_repo", D)]: 5 }), Infinity],
    [
      "the current range starts after the previous one",
      base,
      snap(D, D + 2 * DAY_MS, { ...base.counts }),
      Infinity,
    ],
    [
      "the surplus read last time is not new",
      { ...base, surplus: 1 },
      snap(D - DAY_MS, D + DAY_MS, {
        [k("delete_robot", D)]: 2,
        [k("push_repo", D)]: 7,
      }),
      1,
    ],
    [
      "less growth than the surplus: the counts are not what they were",
      { ...base, surplus: 3 },
      snap(D - DAY_MS, D + DAY_MS, {
        [k("delete_robot", D)]: 2,
        [k("push_repo", D)]: 6,
      }),
      Infinity,
    ],
  ];
  for (const [name, previous, current, want] of rows) assert.equal(growth(previous, current), want, name);
});

Deno.test("the stop rule: found enough only beyond the entries logged after the counts", () => {
  const rows: [string, number, number, number, boolean][] = [
    ["found what was counted", 1, 1, 0, true],
    ["more found than counted", 3, 1, 0, true],
    ["one of the two found is newer than the counts", 2, 2, 1, false],
    ["not yet", 0, 1, 0, false],
    ["nothing counted is never enough to stop early (read to the cursor)", 5, Infinity, 0, false],
    ["what was logged since is unknown", 5, 1, Infinity, false],
  ];
  for (const [name, found, wanted, after, want] of rows) {
    assert.equal(foundEnough(found, wanted, after), want, name);
  }
  assert.equal(surplusAfter(3, 1), 2);
  assert.equal(surplusAfter(0, 2), 0, "fewer found than counted (the cursor came first)");
  assert.equal(surplusAfter(4, Infinity), 0);
});

Deno.test("keepSnapshot drops days before yesterday; parseSnapshot reads back only what it wrote", () => {
  const current = snap(D - 3 * DAY_MS, D + DAY_MS, {
    [k("push_repo", D - 3 * DAY_MS)]: 4,
    [k("push_repo", D)]: 1,
  });
  const kept = keepSnapshot(current, D + 60_000, 2);
  assert.deepEqual(kept, snap(D - DAY_MS, D + DAY_MS, { [k("push_repo", D)]: 1 }, 2));
  assert.deepEqual(parseSnapshot(JSON.parse(JSON.stringify(kept))), kept);
  assert.equal(parseSnapshot({ from: "x" }), undefined);
  assert.equal(parseSnapshot(undefined), undefined);
  // What was kept compares with the next poll's counts.
  assert.equal(growth(kept, snap(D - DAY_MS, D + DAY_MS, { [k("push_repo", D)]: 4 })), 1);
});
