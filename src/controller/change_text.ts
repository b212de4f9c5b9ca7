/**
 * @module
 * How planned changes read: as a plan (`quay-bridge plan` prints "create robot …") and, once made,
 * as an Event (`RobotCreated`, "Created robot …"). One place, so the two never drift apart.
 */
import type { ClusterChange } from "./cluster_plan.ts";
import type { FinalizerChange } from "./namespace_plan.ts";
import type { QuayChange } from "./quay_plan.ts";
import type { RotationReason } from "./rotation_plan.ts";
import { ROTATE_ANNOTATION } from "../names.ts";

/** The Event reason of each Quay change once made. */
export const QUAY_CHANGE_REASONS: Readonly<Record<QuayChange["kind"], string>> = {
  createOrganization: "OrganizationCreated",
  createRobot: "RobotCreated",
  rotateRobot: "CredentialsRotated",
  createPrototype: "DefaultPermissionCreated",
  updatePrototype: "DefaultPermissionUpdated",
  grantRepository: "RepositoryPermissionGranted",
  createRepository: "RepositoryCreated",
  deleteRepository: "RepositoryDeleted",
  deleteOrganization: "OrganizationDeleted",
};

/** A Quay change as a step of a plan. */
export function planText(change: QuayChange, organization: string): string {
  switch (change.kind) {
    case "createOrganization":
      return `create organization ${organization}`;
    case "createRobot":
      return `create robot ${change.robot.fullName}`;
    case "rotateRobot":
      return `rotate the token of robot ${change.robot.fullName} (${rotationCause(change.reason)})`;
    case "createPrototype":
      return `give ${change.robot.fullName} ${change.robot.role} on new repositories`;
    case "updatePrototype":
      return `change ${change.robot.fullName}'s default permission to ${change.robot.role}`;
    case "grantRepository":
      return `grant ${change.robot.role} on ${change.repository} to ${change.robot.fullName}`;
    case "createRepository":
      return `create repository ${organization}/${change.repository}`;
    case "deleteRepository":
      return `delete repository ${organization}/${change.repository}`;
    case "deleteOrganization":
      return `delete organization ${organization}`;
  }
}

/** A Quay change once made, for its Event. */
export function doneText(change: QuayChange, organization: string): string {
  switch (change.kind) {
    case "createOrganization":
      return `Created Quay organization ${organization}`;
    case "createRobot":
      return `Created robot ${change.robot.fullName}`;
    case "rotateRobot":
      return `Rotated the token of robot ${change.robot.fullName} (${
        rotationCause(change.reason)
      }); its Secret is updated in place and the old token no longer works`;
    case "createPrototype":
    case "updatePrototype":
      return `Robot ${change.robot.fullName} gets ${change.robot.role} on new repositories of ${organization}`;
    case "grantRepository":
      return `Granted ${change.robot.role} on ${organization}/${change.repository} to ${change.robot.fullName}`;
    case "createRepository":
      return `Created repository ${organization}/${change.repository}`;
    case "deleteRepository":
      return `Deleted repository ${organization}/${change.repository} (its ImageStream is gone; ` +
        `repositoryDeletionPolicy is Delete)`;
    case "deleteOrganization":
      return `Deleted Quay organization ${organization}`;
  }
}

function rotationCause(reason: RotationReason): string {
  return reason === "requested"
    ? `requested by the namespace annotation ${ROTATE_ANNOTATION}`
    : "spec.credentialRotation.interval";
}

/** A cluster change as a step of a plan. */
export function clusterPlanText(change: ClusterChange): string {
  switch (change.kind) {
    case "createSecret":
      return `create Secret ${change.secret}`;
    case "updateSecret":
      return `update Secret ${change.secret}`;
    case "linkSecret":
      return `link Secret ${change.secret} to service account ${change.account.name}`;
  }
}

/** A finalizer change as a step of a plan; undefined for none. */
export function finalizerPlanText(change: FinalizerChange): string | undefined {
  if (change === "add") return "add the namespace finalizer";
  if (change === "release") return "release the namespace finalizer";
  return undefined;
}

/** One change made in a pass, for the pass's Event. */
export interface DoneChange {
  readonly reason: string;
  readonly text: string;
}

/** Longest Event message written; the API server keeps Events small, and so do readers. */
export const EVENT_MESSAGE_LIMIT = 1_000;

/**
 * The one Normal Event of a pass that changed things: its reason is that of the first change (a
 * plan's order puts the weightiest first: the organization, robots, permissions, repositories, then
 * Secrets), its message every change in order, cut at whole changes to fit
 * {@linkcode EVENT_MESSAGE_LIMIT} with how many were left out. One Event per pass rather than one per
 * change: a new namespace made 13, and at 1,000 namespaces those writes were most of what the
 * kube-apiserver did (README, Performance).
 */
export function passEvent(done: readonly DoneChange[]): { reason: string; message: string } | undefined {
  const first = done[0];
  if (!first) return undefined;
  let message = "";
  for (let i = 0; i < done.length; i++) {
    const text = (done[i] as DoneChange).text;
    const next = message === "" ? text : `${message}; ${text}`;
    const rest = done.length - i - 1;
    const tail = rest > 0 ? `; and ${rest} more` : "";
    if (next.length + tail.length > EVENT_MESSAGE_LIMIT && message !== "") {
      return { reason: first.reason, message: `${message}; and ${done.length - i} more` };
    }
    message = next;
  }
  return { reason: first.reason, message: message.slice(0, EVENT_MESSAGE_LIMIT) };
}
