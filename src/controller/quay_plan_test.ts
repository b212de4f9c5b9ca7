import assert from "node:assert/strict";
import {
  type DesiredOrganization,
  type KnownOrganization,
  planQuay,
  unknownOrganization,
} from "./quay_plan.ts";

const robots = [
  { shortName: "builder", fullName: "openshift_a+builder", role: "write" as const },
  { shortName: "default", fullName: "openshift_a+default", role: "read" as const },
];

function desired(repositories: string[], deleteOrphanRepositories = false): DesiredOrganization {
  return {
    organization: "openshift_a",
    robots,
    repositories: new Set(repositories),
    deleteOrphanRepositories,
  };
}

function complete(): KnownOrganization {
  const k = unknownOrganization();
  k.exists = true;
  k.robots.set("builder", "t1").set("default", "t2");
  k.prototypes.set("openshift_a+builder", { id: "p1", role: "write" }).set("openshift_a+default", {
    id: "p2",
    role: "read",
  });
  return k;
}

Deno.test("planQuay creates organization, robots, prototypes, then repositories in that order", () => {
  const kinds = planQuay(desired(["web", "api"]), unknownOrganization()).map((c) =>
    c.kind + ("repository" in c ? `:${c.repository}` : "robot" in c ? `:${c.robot.shortName}` : "")
  );
  assert.deepEqual(kinds, [
    "createOrganization",
    "createRobot:builder",
    "createRobot:default",
    "createPrototype:builder",
    "createPrototype:default",
    "createRepository:api",
    "createRepository:web",
  ]);
});

Deno.test("planQuay has nothing to do when Quay matches", () => {
  const known = complete();
  known.repositories.set("web", "");
  assert.deepEqual(planQuay(desired(["web"]), known), []);
});

Deno.test("planQuay grants existing repositories when a prototype is recreated", () => {
  const known = complete();
  known.repositories.set("web", "");
  known.prototypes.delete("openshift_a+builder");
  known.robots.delete("builder");
  const changes = planQuay(desired(["web"]), known);
  assert.deepEqual(changes.map((c) => c.kind), ["createRobot", "createPrototype", "grantRepository"]);
});

Deno.test("planQuay fixes a prototype with the wrong role", () => {
  const known = complete();
  known.prototypes.set("openshift_a+default", { id: "p2", role: "write" });
  assert.deepEqual(planQuay(desired([]), known), [{ kind: "updatePrototype", robot: robots[1], id: "p2" }]);
});

Deno.test("planQuay deletes only marked repositories, and only under the Delete policy", () => {
  const known = complete();
  known.repositories.set("gone", "Managed by quay-bridge for ImageStream a/gone");
  known.repositories.set("manual", "pushed by hand");
  assert.deepEqual(planQuay(desired([]), known), []);
  assert.deepEqual(planQuay(desired([], true), known), [{ kind: "deleteRepository", repository: "gone" }]);
});
