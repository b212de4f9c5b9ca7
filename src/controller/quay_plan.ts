/**
 * @module
 * What must change in Quay for one namespace, computed purely from what is desired and what is
 * known to exist. The order of the steps is part of the contract: the organization first, then
 * robots, then their default permissions (prototypes), and repositories last — prototypes only
 * apply to repositories created after them, so repositories that already existed get an explicit
 * permission whenever a prototype had to be (re)created.
 */
import type { QuayRole } from "../integration_spec.ts";
import { REPOSITORY_MARKER } from "../names.ts";
import type { RotationReason } from "./rotation_plan.ts";

/** One robot the namespace needs. */
export interface DesiredRobot {
  /** Service account (and robot short) name. */
  readonly shortName: string;
  /** `<org>+<short>`. */
  readonly fullName: string;
  readonly role: QuayRole;
}

/** What a namespace needs in Quay. */
export interface DesiredOrganization {
  readonly organization: string;
  readonly robots: readonly DesiredRobot[];
  /** Repository names, one per ImageStream whose name is valid in Quay. */
  readonly repositories: ReadonlySet<string>;
  /** Delete repositories we created whose ImageStream is gone. */
  readonly deleteOrphanRepositories: boolean;
}

/** A default permission as known. */
export interface KnownPrototype {
  readonly id: string;
  readonly role: QuayRole;
}

/** What is known to exist in Quay for one organization (an in-memory mirror). */
export interface KnownOrganization {
  /** The organization exists. */
  exists: boolean;
  /** Robot short name → token (undefined when the token is not known). */
  readonly robots: Map<string, string | undefined>;
  /** Robot full name → its default permission. */
  readonly prototypes: Map<string, KnownPrototype>;
  /** Repository name → description. */
  readonly repositories: Map<string, string>;
  /** When the mirror was last read from Quay (ms since epoch); 0 when it was only inferred. */
  observedAt: number;
}

/** An empty mirror of an organization that does not exist yet. */
export function unknownOrganization(): KnownOrganization {
  return { exists: false, robots: new Map(), prototypes: new Map(), repositories: new Map(), observedAt: 0 };
}

/** One change in Quay. */
export type QuayChange =
  | { readonly kind: "createOrganization"; readonly organization: string }
  | { readonly kind: "createRobot"; readonly robot: DesiredRobot }
  /** Regenerates the robot's token (`rotation_plan.ts` decides; never from {@linkcode planQuay}). */
  | { readonly kind: "rotateRobot"; readonly robot: DesiredRobot; readonly reason: RotationReason }
  | { readonly kind: "createPrototype"; readonly robot: DesiredRobot }
  | { readonly kind: "updatePrototype"; readonly robot: DesiredRobot; readonly id: string }
  | { readonly kind: "grantRepository"; readonly repository: string; readonly robot: DesiredRobot }
  | { readonly kind: "createRepository"; readonly repository: string }
  | { readonly kind: "deleteRepository"; readonly repository: string }
  /** Only in a deleting namespace's plan, never from {@linkcode planQuay}. */
  | { readonly kind: "deleteOrganization"; readonly organization: string };

/** The description written on repositories created for an ImageStream. */
export function repositoryDescription(namespace: string, imageStream: string): string {
  return `${REPOSITORY_MARKER} ${namespace}/${imageStream}`;
}

/** Changes in order: organization, robots, prototypes, grants on existing repositories, repositories. */
export function planQuay(desired: DesiredOrganization, known: KnownOrganization): QuayChange[] {
  const changes: QuayChange[] = [];
  if (!known.exists) changes.push({ kind: "createOrganization", organization: desired.organization });
  for (const robot of desired.robots) {
    if (!known.robots.has(robot.shortName)) changes.push({ kind: "createRobot", robot });
  }
  const regranted: DesiredRobot[] = [];
  for (const robot of desired.robots) {
    const prototype = known.prototypes.get(robot.fullName);
    if (!prototype) {
      changes.push({ kind: "createPrototype", robot });
      regranted.push(robot);
    } else if (prototype.role !== robot.role) {
      changes.push({ kind: "updatePrototype", robot, id: prototype.id });
      regranted.push(robot);
    }
  }
  // Repositories that exist now were created before these prototypes: grant explicitly.
  for (const repository of [...known.repositories.keys()].sort()) {
    for (const robot of regranted) changes.push({ kind: "grantRepository", repository, robot });
  }
  for (const repository of [...desired.repositories].sort()) {
    if (!known.repositories.has(repository)) changes.push({ kind: "createRepository", repository });
  }
  if (desired.deleteOrphanRepositories) {
    for (const [repository, description] of [...known.repositories].sort(([a], [b]) => a.localeCompare(b))) {
      // Only repositories this operator created for an ImageStream are ever deleted.
      if (!desired.repositories.has(repository) && description.startsWith(REPOSITORY_MARKER)) {
        changes.push({ kind: "deleteRepository", repository });
      }
    }
  }
  return changes;
}
