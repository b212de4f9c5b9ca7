/**
 * @module
 * Reads an organization's state from Quay into a {@linkcode KnownOrganization}, and applies the Quay
 * changes of a namespace plan through the {@linkcode QuayPort}, updating the mirror after every call
 * that succeeded so a failure half-way leaves an accurate mirror behind. Applying never decides
 * again: a call whose answer contradicts the plan (the organization was created meanwhile by someone
 * else) ends the pass with a {@linkcode ConflictError} and marks the mirror stale, so the next pass
 * plans from a fresh read.
 *
 * Call budget (the tests count them): a new namespace with R ImageStreams costs 1 (get org) + 1
 * (create org) + robots + prototypes + R; a re-read of an existing organization costs 3 lists
 * (robots with tokens, prototypes, repositories); an ImageStream whose repository is known costs 0.
 */
import { ConflictError } from "../errors.ts";
import { organizationEmail } from "../names.ts";
import type { QuayPort } from "./namespace_ports.ts";
import {
  type KnownOrganization,
  type QuayChange,
  repositoryDescription,
  unknownOrganization,
} from "./quay_plan.ts";

/**
 * Reads the organization. With no prior mirror it asks whether the organization exists first (a
 * missing organization then costs no lists); with one, it lists directly and treats a 404 as
 * "the organization was deleted behind our back".
 */
export async function observeOrganization(
  client: Pick<QuayPort, "getOrganization" | "listRobots" | "listPrototypes" | "listRepositories">,
  organization: string,
  previous: KnownOrganization | undefined,
  now: number,
): Promise<KnownOrganization> {
  if (!previous || !previous.exists) {
    const org = await client.getOrganization(organization);
    if (!org) return { ...unknownOrganization(), observedAt: now };
  }
  // A missing organization lists as `undefined`: the client confirms an empty list against the
  // organization itself (Quay answers a super user's list of a missing one with `200 []`).
  const robots = await client.listRobots(organization);
  if (!robots) return { ...unknownOrganization(), observedAt: now };
  const [prototypes, repositories] = await Promise.all([
    client.listPrototypes(organization),
    client.listRepositories(organization),
  ]);
  const known: KnownOrganization = { ...unknownOrganization(), exists: true, observedAt: now };
  const prefix = `${organization}+`;
  for (const robot of robots) {
    if (robot.name.startsWith(prefix)) known.robots.set(robot.name.slice(prefix.length), robot.token);
  }
  for (const p of prototypes ?? []) {
    // Only robot delegates matter; a user delegate of the same name cannot exist.
    if (p.delegate.is_robot !== false && p.delegate.kind === "user") {
      known.prototypes.set(p.delegate.name, { id: p.id, role: p.role });
    }
  }
  for (const repo of repositories) known.repositories.set(repo.name, repo.description ?? "");
  return known;
}

/** Options for {@linkcode applyQuayChanges}. */
export interface ApplyQuayOptions {
  readonly organization: string;
  /** The Kubernetes namespace, for repository and robot descriptions. */
  readonly namespace: string;
  /** Called after each change that changed something (Events, logs). */
  readonly onChange?: (change: QuayChange) => void;
}

/** The order of the steps; calls within a step run concurrently (the client caps concurrency). */
const STEPS: readonly (readonly QuayChange["kind"][])[] = [
  ["createOrganization"],
  ["createRobot"],
  ["rotateRobot"],
  ["createPrototype", "updatePrototype"],
  ["grantRepository"],
  ["createRepository", "deleteRepository"],
  ["deleteOrganization"],
];

/** Applies `changes` (a plan's, in order) through `client`, keeping `known` in step. */
export async function applyQuayChanges(
  client: QuayPort,
  changes: readonly QuayChange[],
  known: KnownOrganization,
  options: ApplyQuayOptions,
): Promise<void> {
  for (const kinds of STEPS) {
    const batch = changes.filter((c) => kinds.includes(c.kind));
    const results = await Promise.allSettled(batch.map(async (change) => {
      if (await apply(client, change, known, options)) options.onChange?.(change);
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/** One change; false when Quay already was as wanted (nothing to report). */
async function apply(
  client: QuayPort,
  change: QuayChange,
  known: KnownOrganization,
  options: ApplyQuayOptions,
): Promise<boolean> {
  const org = options.organization;
  switch (change.kind) {
    case "createOrganization": {
      if (await client.createOrganization(org, organizationEmail(org)) === "exists") {
        // Someone else (another replica, an admin) created it since it was read: what it holds is not
        // what this plan was made from. Read it afresh next pass.
        Object.assign(known, { exists: true, observedAt: 0 });
        throw new ConflictError(`Quay organization ${org} was created meanwhile by someone else`, {
          reason: "OrganizationCreatedMeanwhile",
        });
      }
      known.exists = true;
      return true;
    }
    case "createRobot": {
      const robot = await client.createRobot(
        org,
        change.robot.shortName,
        `Robot of service account ${change.robot.shortName} in ${options.namespace} (quay-bridge)`,
      );
      known.robots.set(change.robot.shortName, robot.token);
      return true;
    }
    case "rotateRobot": {
      try {
        const robot = await client.regenerateRobotToken(org, change.robot.shortName);
        if (robot.token === undefined) throw new Error("Quay returned no token");
        // The mirror learns the new token at once: the Secret is written with it, never the old one.
        known.robots.set(change.robot.shortName, robot.token);
      } catch (error) {
        // Quay may have regenerated it before the answer was lost: read the token afresh next pass.
        known.robots.set(change.robot.shortName, undefined);
        throw error;
      }
      return true;
    }
    case "createPrototype": {
      const prototype = await client.createPrototype(org, change.robot.fullName, change.robot.role);
      known.prototypes.set(change.robot.fullName, { id: prototype.id, role: change.robot.role });
      return true;
    }
    case "updatePrototype":
      await client.updatePrototype(org, change.id, change.robot.role);
      known.prototypes.set(change.robot.fullName, { id: change.id, role: change.robot.role });
      return true;
    case "grantRepository":
      await client.setRepositoryPermission(org, change.repository, change.robot.fullName, change.robot.role);
      return true;
    case "createRepository": {
      const description = repositoryDescription(options.namespace, change.repository);
      const result = await client.createRepository(org, change.repository, description);
      // A repository someone else created is not ours to delete later: remember no marker for it.
      known.repositories.set(change.repository, result === "created" ? description : "");
      return result === "created";
    }
    case "deleteRepository": {
      const deleted = await client.deleteRepository(org, change.repository);
      known.repositories.delete(change.repository);
      return deleted;
    }
    case "deleteOrganization": {
      const deleted = await client.deleteOrganization(org);
      Object.assign(known, { ...unknownOrganization(), observedAt: 0 });
      return deleted;
    }
  }
}
