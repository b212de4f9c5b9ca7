/**
 * @module
 * Reads an organization's state from Quay into a {@linkcode KnownOrganization} and applies a
 * {@linkcode planQuay} plan through the Quay client, updating the mirror after every call that
 * succeeded so a failure half-way leaves an accurate mirror behind.
 *
 * Call budget (the tests count them): a new namespace with R ImageStreams costs 1 (get org) + 1
 * (create org) + robots + prototypes + R; a re-read of an existing organization costs 3 lists
 * (robots with tokens, prototypes, repositories); an ImageStream whose repository is known costs 0.
 */
import type { QuayClient } from "../quay/client.ts";
import { organizationEmail } from "../names.ts";
import {
  type DesiredOrganization,
  type KnownOrganization,
  planQuay,
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
  client: QuayClient,
  organization: string,
  previous: KnownOrganization | undefined,
  now: number,
): Promise<KnownOrganization> {
  if (!previous || !previous.exists) {
    const org = await client.getOrganization(organization);
    if (!org) return { ...unknownOrganization(), observedAt: now };
  }
  const robots = await client.listRobots(organization);
  if (!robots) return { ...unknownOrganization(), observedAt: now };
  // Quay answers a superuser's robot list of a deleted organization with an empty list, not a 404:
  // an empty list where robots were known is confirmed against the organization itself.
  if (robots.length === 0 && previous?.exists && previous.robots.size > 0) {
    if (!await client.getOrganization(organization)) return { ...unknownOrganization(), observedAt: now };
  }
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

/** Options for {@linkcode syncOrganization}. */
export interface SyncOrganizationOptions {
  /** The Kubernetes namespace, for repository descriptions. */
  namespace: string;
  /** ImageStream name by repository name, for descriptions. */
  imageStreams?: ReadonlyMap<string, string>;
  /** Called after each change was made (Events, logs). */
  onChange?: (change: QuayChange) => void;
}

/** Plans and applies the changes `desired` needs, mutating `known`. Returns what was changed. */
export async function syncOrganization(
  client: QuayClient,
  desired: DesiredOrganization,
  known: KnownOrganization,
  options: SyncOrganizationOptions,
): Promise<QuayChange[]> {
  const changes = planQuay(desired, known);
  const org = desired.organization;
  const done: QuayChange[] = [];
  const record = (change: QuayChange) => {
    done.push(change);
    options.onChange?.(change);
  };
  // Steps run in order; calls within a step run concurrently (the client caps concurrency).
  const steps: QuayChange["kind"][][] = [
    ["createOrganization"],
    ["createRobot"],
    ["createPrototype", "updatePrototype"],
    ["grantRepository"],
    ["createRepository", "deleteRepository"],
  ];
  for (const kinds of steps) {
    const batch = changes.filter((c) => kinds.includes(c.kind));
    const results = await Promise.allSettled(batch.map(async (change) => {
      await apply(client, org, change, known, options);
      record(change);
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
  return done;
}

async function apply(
  client: QuayClient,
  org: string,
  change: QuayChange,
  known: KnownOrganization,
  options: SyncOrganizationOptions,
): Promise<void> {
  switch (change.kind) {
    case "createOrganization": {
      const result = await client.createOrganization(org, organizationEmail(org));
      if (result === "exists") {
        // Created meanwhile (another replica, an admin): read what is there instead.
        const fresh = await observeOrganization(client, org, undefined, Date.now());
        Object.assign(known, { exists: fresh.exists, observedAt: fresh.observedAt });
        for (const [k, v] of fresh.robots) known.robots.set(k, v);
        for (const [k, v] of fresh.prototypes) known.prototypes.set(k, v);
        for (const [k, v] of fresh.repositories) known.repositories.set(k, v);
      }
      known.exists = true;
      return;
    }
    case "createRobot": {
      if (known.robots.has(change.robot.shortName)) return;
      const robot = await client.createRobot(
        org,
        change.robot.shortName,
        `Robot of service account ${change.robot.shortName} in ${options.namespace} (quay-bridge)`,
      );
      known.robots.set(change.robot.shortName, robot.token);
      return;
    }
    case "createPrototype": {
      const prototype = await client.createPrototype(org, change.robot.fullName, change.robot.role);
      known.prototypes.set(change.robot.fullName, { id: prototype.id, role: change.robot.role });
      return;
    }
    case "updatePrototype":
      await client.updatePrototype(org, change.id, change.robot.role);
      known.prototypes.set(change.robot.fullName, { id: change.id, role: change.robot.role });
      return;
    case "grantRepository":
      await client.setRepositoryPermission(org, change.repository, change.robot.fullName, change.robot.role);
      return;
    case "createRepository": {
      const imageStream = options.imageStreams?.get(change.repository) ?? change.repository;
      const description = repositoryDescription(options.namespace, imageStream);
      const result = await client.createRepository(org, change.repository, description);
      // A repository someone else created is not ours to delete later: remember no marker for it.
      known.repositories.set(change.repository, result === "created" ? description : "");
      return;
    }
    case "deleteRepository":
      await client.deleteRepository(org, change.repository);
      known.repositories.delete(change.repository);
      return;
  }
}
