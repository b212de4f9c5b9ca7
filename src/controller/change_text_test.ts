import assert from "node:assert/strict";
import { EVENT_MESSAGE_LIMIT, passEvent } from "./change_text.ts";

Deno.test("a pass's Event takes the first change's reason and names every change in order", () => {
  assert.equal(passEvent([]), undefined);
  assert.deepEqual(
    passEvent([
      { reason: "OrganizationCreated", text: "Created Quay organization o" },
      { reason: "RobotCreated", text: "Created robot o+builder" },
      { reason: "SecretCreated", text: "Created Secret builder-quay-c" },
    ]),
    {
      reason: "OrganizationCreated",
      message: "Created Quay organization o; Created robot o+builder; Created Secret builder-quay-c",
    },
  );
});

Deno.test("a pass's Event is cut at whole changes to the limit, saying how many were left out", () => {
  const done = Array.from({ length: 60 }, (_, i) => ({
    reason: "RepositoryCreated",
    text: `Created repository openshift_ns/app-${String(i).padStart(2, "0")}`,
  }));
  const event = passEvent(done);
  assert.ok(event);
  assert.ok(event.message.length <= EVENT_MESSAGE_LIMIT, String(event.message.length));
  const kept = event.message.split("; ").filter((part) => part.startsWith("Created repository"));
  const left = Number(/; and (\d+) more$/.exec(event.message)?.[1]);
  assert.equal(kept.length + left, 60);
  assert.ok(kept.every((part, i) => part.endsWith(`app-${String(i).padStart(2, "0")}`)));
  // One change longer than the limit alone is cut, not dropped.
  const long = passEvent([{ reason: "R", text: "x".repeat(EVENT_MESSAGE_LIMIT + 50) }]);
  assert.equal(long?.message.length, EVENT_MESSAGE_LIMIT);
});
